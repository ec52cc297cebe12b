/* Renders one seed of an anycost generator file at a chosen config and writes a binary PPM, through
 * libanycost's C API (csrc/capi/anycost.h). ctest runs it on the bundled model.
 *
 *   render MODEL.safetensors OUT.ppm [--seed N] [--resolution R] [--ratio F] [--truncation T]
 *                                    [--threads K]
 *
 * The z of a seed comes from this program's own generator (splitmix64 + Box-Muller), not torch's:
 * the same seed gives another image than `anycost generate --seeds`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anycost.h"

/* Uniform in (0, 1) from splitmix64. */
static double uniform01(uint64_t *state) {
  uint64_t x = (*state += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return ((double)(x >> 11) + 0.5) / 9007199254740992.0; /* 2^53 */
}

/* n standard normal floats (Box-Muller). */
static void normal(float *out, int n, uint64_t seed) {
  const double two_pi = 6.283185307179586;
  uint64_t state = seed;
  for (int i = 0; i < n; i += 2) {
    double r = sqrt(-2.0 * log(uniform01(&state))), a = two_pi * uniform01(&state);
    out[i] = (float)(r * cos(a));
    if (i + 1 < n) out[i + 1] = (float)(r * sin(a));
  }
}

/* The raw output [3, res, res] (nominally [-1, 1]) as 8-bit RGB, like anycost.images.to_uint8. */
static int write_ppm(const char *path, const float *rgb, int res) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fprintf(f, "P6\n%d %d\n255\n", res, res);
  const size_t plane = (size_t)res * res;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) {
      float v = rgb[c * plane + p];
      v = v < -1.f ? -1.f : v > 1.f ? 1.f : v;
      fputc((int)lrintf((v + 1.f) * 127.5f), f);
    }
  return fclose(f) == 0 ? 0 : -1;
}

static int usage(void) {
  fprintf(stderr, "usage: render MODEL.safetensors OUT.ppm [--seed N] [--resolution R] [--ratio F] "
                  "[--truncation T] [--threads K]\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  const char *model_path = argv[1], *out_path = argv[2];
  unsigned long long seed = 0;
  int resolution = 0, threads = 0;
  float ratio = 1.f, truncation = 1.f;
  for (int i = 3; i < argc; i += 2) {
    if (i + 1 >= argc) return usage();
    if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--resolution")) resolution = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--ratio")) ratio = strtof(argv[i + 1], NULL);
    else if (!strcmp(argv[i], "--truncation")) truncation = strtof(argv[i + 1], NULL);
    else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else return usage();
  }

  char err[512];
  anycost_model *m = anycost_load(model_path, err, sizeof err);
  if (!m) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (threads > 0) anycost_set_num_threads(threads);
  if (resolution == 0) { /* the largest the model has */
    int res[16];
    const int count = anycost_resolutions(m, res, 16);
    resolution = res[(count < 16 ? count : 16) - 1];
  }

  const int style_dim = anycost_style_dim(m);
  float *z = malloc(sizeof(float) * style_dim), *w = malloc(sizeof(float) * style_dim);
  float *mean = malloc(sizeof(float) * style_dim);
  float *rgb = malloc(sizeof(float) * 3 * (size_t)resolution * resolution);
  int rc = 1;
  if (!z || !w || !mean || !rgb) {
    fprintf(stderr, "out of memory\n");
    goto done;
  }
  normal(z, style_dim, seed);
  if (anycost_mapping(m, z, 1, w) != ANYCOST_OK || anycost_w_avg(m, mean) != ANYCOST_OK) {
    fprintf(stderr, "mapping failed\n");
    goto done;
  }
  /* One w for every layer (w_plus 0), the uniform config of `ratio` (widths NULL). */
  if (anycost_render(m, w, 1, 0, resolution, NULL, ratio, mean, truncation, rgb, err, sizeof err) != ANYCOST_OK) {
    fprintf(stderr, "%s\n", err);
    goto done;
  }
  if (write_ppm(out_path, rgb, resolution) != 0) {
    fprintf(stderr, "cannot write %s\n", out_path);
    goto done;
  }
  printf("%s: seed %llu, %d px, ratio %g, truncation %g (libanycost %s, %s, %d threads)\n", out_path, seed,
         resolution, ratio, truncation, anycost_version(), anycost_cpu_capability(), anycost_num_threads());
  rc = 0;
done:
  free(z);
  free(w);
  free(mean);
  free(rgb);
  anycost_free(m);
  return rc;
}
