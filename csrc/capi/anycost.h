/* libanycost: render any sub-generator of an Anycost (StyleGAN2) generator from C or C++, without
 * Python or PyTorch.
 *
 * A model is loaded once from one of our `.safetensors` generator files (format "anycost-generator",
 * written by `anycost.save_generator` / `anycost train`, or "anycost-compressed-generator", written by
 * `anycost compress`: pruned and k-means weights are decoded to float32 on load, and the convs of an int8 model
 * run the int8 kernels where the Python model runs them) and is read-only afterwards: any number of
 * threads may call anycost_mapping and anycost_render on one model at once, each call with its own
 * scratch memory. A sub-generator ("config") is an output resolution plus one channel width per
 * layer, either a uniform ratio of the full widths or one width per layer, exactly as in Python
 * (`G.subnet(resolution, ratio)` / `SubnetConfig`); the output equals the Python
 * `G(w, config=..., noise="const")` in float32 up to rounding.
 *
 * Errors: every function that can fail returns a negative ANYCOST_E_* code (or NULL) and, where it
 * takes `err` / `err_len`, writes a one-line, NUL-terminated message there, truncated to `err_len`
 * bytes (nothing is written when `err` is NULL or `err_len` is 0). Nothing aborts the process.
 *
 * Threads: the work of one call is split over a pool of OpenMP threads (std::thread when the
 * library was built without OpenMP). Their number is, in order: anycost_set_num_threads(n > 0),
 * else the environment variable ANYCOST_NUM_THREADS, else OpenMP's default (OMP_NUM_THREADS or
 * every core). Instruction set: the CPU kernels pick AVX-512, AVX2 or portable code at run time;
 * ANYCOST_CPU_CAPABILITY=portable|avx2|avx512|avx512_vnni forces a level (see anycost_cpu_capability).
 *
 * Arithmetic: float32 only (see anycost_set_precision). All arrays are dense, row-major, float32.
 */
#ifndef ANYCOST_H
#define ANYCOST_H

#include <stddef.h>

#if defined(_WIN32)
#define ANYCOST_API
#else
#define ANYCOST_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes: 0 is success, every error is negative. */
#define ANYCOST_OK 0
#define ANYCOST_E_ARGUMENT (-1)    /* a NULL pointer, n <= 0, a NaN, a bad ratio, thread count or precision */
#define ANYCOST_E_IO (-2)          /* the file is missing or cannot be read */
#define ANYCOST_E_FORMAT (-3)      /* not a safetensors file, a corrupt or truncated one, or not an
                                      anycost StyleGAN2 generator (another format, wrong keys/shapes) */
#define ANYCOST_E_RESOLUTION (-4)  /* a resolution the model cannot output */
#define ANYCOST_E_WIDTH (-5)       /* a layer width out of range, or the wrong number of widths */
#define ANYCOST_E_UNSUPPORTED (-6) /* something this build cannot do (bf16) */
#define ANYCOST_E_MEMORY (-7)      /* out of memory */
#define ANYCOST_E_INTERNAL (-8)    /* the CPU kernels refused (e.g. ANYCOST_CPU_CAPABILITY names a level
                                      this CPU lacks); the message says why */

/* Precisions for anycost_set_precision. */
#define ANYCOST_PRECISION_FP32 0
#define ANYCOST_PRECISION_BF16 1

/* A loaded generator (opaque, immutable after anycost_load). */
typedef struct anycost_model anycost_model;

/* The library version, e.g. "0.1.0" (the version of the anycost package it was built with). */
ANYCOST_API const char *anycost_version(void);

/* The instruction-set level the kernels run at: "portable", "avx2" or "avx512"; "unavailable" when
 * ANYCOST_CPU_CAPABILITY names an unknown level or one this CPU lacks (anycost_render then fails
 * with ANYCOST_E_INTERNAL and says why). Never NULL. */
ANYCOST_API const char *anycost_cpu_capability(void);

/* Threads per call: n >= 1 sets the count for every later call (process-wide), n == 0 goes back to
 * the default (ANYCOST_NUM_THREADS, else OpenMP's default). Returns ANYCOST_OK, or
 * ANYCOST_E_ARGUMENT for n < 0. Calls already running keep their count. */
ANYCOST_API int anycost_set_num_threads(int n);

/* The number of threads a call started now would use (>= 1). */
ANYCOST_API int anycost_num_threads(void);

/* The arithmetic of the convolutions. ANYCOST_PRECISION_FP32 (the only one this library has)
 * returns ANYCOST_OK; ANYCOST_PRECISION_BF16 returns ANYCOST_E_UNSUPPORTED with a message: the
 * kernels here are float32 only (bf16 rendering runs through PyTorch / oneDNN in the Python package,
 * `G(..., precision="bf16")`). Any other value is ANYCOST_E_ARGUMENT. */
ANYCOST_API int anycost_set_precision(int precision, char *err, size_t err_len);

/* Loads the generator file at `path` (every tensor is checked: names, shapes, finite values).
 * Returns NULL and a message in `err` when the file is missing or unreadable, truncated, corrupt, not
 * a safetensors file, or another kind of anycost file (SlimGAN, GAN Compression, encoder, ...).
 * Official StyleGAN2 `.pt` checkpoints are not read here: convert them with `anycost convert`. */
ANYCOST_API anycost_model *anycost_load(const char *path, char *err, size_t err_len);

/* Frees a model (NULL is ignored). No call may be using it. */
ANYCOST_API void anycost_free(anycost_model *m);

/* The dimension of z and w (512 for config-f), or ANYCOST_E_ARGUMENT for a NULL model. */
ANYCOST_API int anycost_style_dim(const anycost_model *m);

/* The number of W+ entries at the model's full resolution (18 at 1024 px), or ANYCOST_E_ARGUMENT. */
ANYCOST_API int anycost_num_styles(const anycost_model *m);

/* The number of layer widths of a config at the model's full resolution (equal to num_styles: the
 * constant input, conv1, then two per resolution from 8 px up; 18 at 1024 px). A config at a lower
 * resolution r has 2*log2(r) - 2 (see anycost_full_widths). ANYCOST_E_ARGUMENT for a NULL model. */
ANYCOST_API int anycost_num_layers(const anycost_model *m);

/* The resolutions the model can output, smallest first (8 px up to the model's), written to
 * out[0 .. min(count, cap)); returns the count (out may be NULL when cap is 0), or
 * ANYCOST_E_ARGUMENT for a NULL model, cap < 0 or a NULL out with cap > 0. */
ANYCOST_API int anycost_resolutions(const anycost_model *m, int *out, int cap);

/* The full width of every layer of a config at `resolution` (0: the model's), written to
 * out[0 .. min(count, cap)); returns the count (= the number of widths a config at that resolution
 * has; out may be NULL when cap is 0), ANYCOST_E_RESOLUTION for a resolution the model lacks or
 * ANYCOST_E_ARGUMENT as for anycost_resolutions. */
ANYCOST_API int anycost_full_widths(const anycost_model *m, int resolution, int *out, int cap);

/* Checks a flexible config: `count` widths for `resolution`, each in [1, full width of its layer].
 * Returns ANYCOST_OK, ANYCOST_E_RESOLUTION, ANYCOST_E_WIDTH (a width out of range or a count other
 * than the resolution's number of layers) or ANYCOST_E_ARGUMENT, with a message. anycost_render
 * runs the same check with count = the resolution's number of layers. */
ANYCOST_API int anycost_check_widths(const anycost_model *m, int resolution, const int *widths, int count,
                                     char *err, size_t err_len);

/* The mean w stored in the model file (`w_avg`, the truncation centre the Python model uses):
 * style_dim floats written to `out`. Returns ANYCOST_OK or ANYCOST_E_ARGUMENT. */
ANYCOST_API int anycost_w_avg(const anycost_model *m, float *out);

/* The mapping network: z [n x style_dim] -> w [n x style_dim] (pixel norm, then the equalised-lr
 * linear layers with leaky ReLU), as `G.mapping(z)`. z and w may not overlap. Returns ANYCOST_OK, or
 * ANYCOST_E_ARGUMENT for a NULL pointer or n <= 0. */
ANYCOST_API int anycost_mapping(const anycost_model *m, const float *z, int n, float *w);

/* Renders n images of one config:
 *   w               w_plus == 0: W  [n x style_dim] (one w for every layer);
 *                   w_plus != 0: W+ [n x num_styles x style_dim] (full length; a config at a lower
 *                   resolution uses its first num_layers(resolution) entries);
 *   resolution      one of anycost_resolutions;
 *   widths          NULL: the uniform config of `ratio`; else one width per layer, exactly as many as
 *                   anycost_full_widths(m, resolution, NULL, 0) returns, each in [1, full width];
 *   ratio           used when widths is NULL: in (0, 1]; the width of every layer is the official
 *                   min(channel_max, int(base(res) * ratio * channel_multiplier)) computed in double
 *                   (as `G.subnet(resolution, ratio)`), so 1 is the full model;
 *   truncation_mean NULL: no truncation (then `truncation` must be 1); else style_dim floats c (for
 *                   the model's own mean, anycost_w_avg): every w becomes c + truncation * (w - c);
 *   rgb             out: n x 3 x resolution x resolution, the raw output (nominally [-1, 1], never
 *                   clamped), as `G(w, config=..., noise="const", truncation=...)`.
 * Noise is the constant noise stored in the model (Python's noise="const"). Returns ANYCOST_OK or a
 * negative code with a message: ANYCOST_E_ARGUMENT (NULL pointer, n <= 0, NaN truncation, truncation
 * != 1 without a mean), ANYCOST_E_RESOLUTION, ANYCOST_E_WIDTH (bad width or ratio),
 * ANYCOST_E_MEMORY, ANYCOST_E_INTERNAL. Thread-safe: concurrent calls on one model are independent.
 * Memory: the model keeps the scratch of its largest render so far (2 feature maps of the widest layer,
 * 2 x 128 MiB at 1024 px for config-f) for the next call, until anycost_free; the Winograd convs keep
 * their transformed weights (per layer and width, built on first use: 103 MiB for config-f at full width)
 * in a cache that all models share, bounded by ANYCOST_WINOGRAD_CACHE_MB MiB (default 256; 0: none), until
 * anycost_free or until the cache needs the room. */
ANYCOST_API int anycost_render(const anycost_model *m, const float *w, int n, int w_plus, int resolution,
                               const int *widths, float ratio, const float *truncation_mean, float truncation,
                               float *rgb, char *err, size_t err_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ANYCOST_H */
