// Micro-benchmark of the fused modulated conv on config-f generator shapes.
//
//   bench_modulated_conv_<level> [--threads T] [--min-time S] [--variants] [--quick] [--paths] [--cpu]
//
//   --paths: also time each layer with the small-image path forced off / on
//            (ModConvBlocking::small_path 0 / 1; the default column is the automatic choice);
//   --winograd: also time each plain 3x3 layer direct, F(2x2, 3x3) and F(4x4, 3x3)
//            (ModConvBlocking::winograd 0 / 2 / 4), and each upsampling layer direct, F(2x2, 2x2) and F(4x4, 2x2)
//            on its sub-pixel phases (ModConvBlocking::up_winograd 0 / 2 / 4);
//   --cpu:   process CPU time instead of wall time (with --threads 1 on a busy machine);
//   --filter TEXT: only the layers whose name contains TEXT;
//   --acc-kb / --xb-kb N: override the acc_bytes / xb_bytes of every path's ModConvBudget (tuning; the
//   defaults are machine_modconv_blocking()'s);
//   --kc / --mc N: override their kc / mc (tuning);
//   --shared-v-kb N: override ModConvBlocking::wino_shared_v_bytes (0: the Winograd path transforms the input once
//   per channel block).
//
// (a) measures the practical fp32 peak of the level with an FMA throughput
//     loop on all threads (12 independent FMA chains of the level's vectors per thread);
// --variants: other micro-kernel shapes MR x NR (AVX-512: 4x6, 6x4, 12x2, 4x3; AVX2: 6x2, 8x1);
// (b) times the kernel at batch 1 on the listed layers and reports
//     ms, GFLOP/s = 2 x true MACs / time, and the fraction of (a).
// True MACs: no-up H*W*Cin*Cout*9; up H*W*Cin*Cout*9 + 16 per output element (blur);
// ToRGB (1x1, fused bias + skip upsample-add) H*W*Cin*Cout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "cpu/modulated_conv_blocked.h"
#include "cpu/parallel.h"

using namespace anycost::cpu;
using Clock = std::chrono::steady_clock;

namespace {

bool g_cpu_clock = false;
int64_t g_acc_bytes = 0, g_xb_bytes = 0;  // --acc-kb / --xb-kb overrides (0: default)
int64_t g_kc = 0, g_mc = 0;               // --kc / --mc overrides (0: default)
int64_t g_shared_v_bytes = -1;            // --shared-v-kb override (-1: default)
const char* g_filter = nullptr;           // --filter: only layers whose name contains it

double now_s() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------
// (a) FMA peak.
#if ANYCOST_CPU_AVX2
// 12 independent vector FMA chains (zmm at the AVX-512 level, ymm at AVX2).
__attribute__((noinline)) float fma_loop(int64_t iters, float seed) {
  vfloat a[12];
  for (int k = 0; k < 12; ++k) a[k] = vset1(seed + 0.001f * k);
  const vfloat m = vset1(0.999999f), c = vset1(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) a[k] = vfma(a[k], m, c);
  }
  vfloat s = a[0];
  for (int k = 1; k < 12; ++k) s = vadd(s, a[k]);
  alignas(64) float out[kVecLen];
  vstore(out, s);
  return out[0];
}
constexpr double kFlopsPerIter = 12 * kVecLen * 2;
#else
__attribute__((noinline)) float fma_loop(int64_t iters, float seed) {
  float a[12][8];
  for (int k = 0; k < 12; ++k)
    for (int l = 0; l < 8; ++l) a[k][l] = seed + 0.001f * k;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k)
      for (int l = 0; l < 8; ++l) a[k][l] = a[k][l] * 0.999999f + 1e-7f;
  float s = 0;
  for (int k = 0; k < 12; ++k) s += a[k][0];
  return s;
}
constexpr double kFlopsPerIter = 12 * 8 * 2;
#endif

double measure_peak(const ThreadedFor& pf) {
  const int T = pf.num_threads();
  const int64_t iters = 20000000;
  std::vector<float> sink(T * 16);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double t0 = now_s();
    pf(0, T, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) sink[t * 16] = fma_loop(iters, 1.0f + t);
    });
    double dt = now_s() - t0;
    best = std::max(best, T * iters * kFlopsPerIter / dt / 1e9);
  }
  return best;
}

// ---------------------------------------------------------------------------
// (b) layers.
struct Layer {
  const char* name;
  int64_t res_in, C_in, C_out;
  bool up;
  int K = 3;  // K = 1: ToRGB (no demod, bias, fused skip upsample-add)
};

int64_t full_channels(int64_t res) {  // config-f channels at ratio 1.0
  static const int64_t B[][2] = {{4, 4096}, {8, 2048}, {16, 1024}, {32, 512}, {64, 256},
                                 {128, 128}, {256, 64}, {512, 32}, {1024, 16}};
  for (auto& b : B)
    if (b[0] == res) return std::min<int64_t>(512, b[1] * 2);
  return 512;
}

struct Result {
  double ms, gflops;
};

template <int MR, int NR>
Result bench_layer(const Layer& L, const ThreadedFor& pf, double min_time, int small_path = -1,
                   int winograd = -1, int up_winograd = -1) {
  const int64_t H = L.res_in, W = L.res_in;
  const int64_t res_out = L.up ? 2 * L.res_in : L.res_in;
  // Sliced view of the full weight: [C_out_full, C_in_full, 3, 3].
  const int64_t Cfo = std::max(L.C_out, full_channels(res_out));
  const int64_t Cfi = std::max(L.C_in, full_channels(L.res_in));
  const int64_t KK = int64_t(L.K) * L.K;
  std::vector<float> wfull(Cfo * Cfi * KK), x(L.C_in * H * W), s(L.C_in),
      skip(L.C_out * (res_out / 2) * (res_out / 2)),
      noise(res_out * res_out), bias(L.C_out);
  uint32_t st = 12345;
  auto rnd = [&] {
    st = st * 1664525u + 1013904223u;
    return (st >> 8) * (1.0f / 16777216.0f) - 0.5f;
  };
  for (auto& v : wfull) v = rnd();
  for (auto& v : x) v = rnd();
  for (auto& v : s) v = 1.0f + rnd();
  for (auto& v : noise) v = rnd();
  for (auto& v : bias) v = rnd();
  for (auto& v : skip) v = rnd();
  // 64-byte aligned, as a torch tensor's data (the kernels write large outputs past the caches only from
  // aligned vectors): 16 floats of slack.
  std::vector<float> out_buf(L.C_out * res_out * res_out + 16);
  float* const out = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(out_buf.data()) + 63) & ~uintptr_t(63));

  ModConvParams p;
  p.N = 1, p.C_in = L.C_in, p.C_out = L.C_out, p.H = H, p.W = W, p.K = L.K;
  p.upsample = L.up, p.demodulate = L.K == 3;
  p.weight_scale = 1.f / std::sqrt(float(Cfi * KK));
  p.x = x.data(), p.x_sn = L.C_in * H * W, p.x_sc = H * W, p.x_sh = W, p.x_sw = 1;
  p.weight = wfull.data(), p.w_so = Cfi * KK, p.w_si = KK, p.w_sh = L.K, p.w_sw = 1;
  p.styles = s.data(), p.s_sn = L.C_in, p.s_sc = 1;
  p.noise = noise.data(), p.noise_sn = 0, p.noise_sh = res_out, p.noise_sw = 1;
  p.noise_strength = 0.1f;
  p.bias = bias.data();
  p.act = Activation::LRelu;
  if (L.K == 1) {  // ToRGB: bias, no noise / activation, fused skip
    p.noise = nullptr;
    p.act = Activation::Linear;
    p.skip = skip.data(), p.skip_sn = 0, p.skip_sc = (res_out / 2) * (res_out / 2),
    p.skip_sh = res_out / 2, p.skip_sw = 1;
  }
  p.out = out, p.o_sn = L.C_out * res_out * res_out, p.o_sc = res_out * res_out,
  p.o_sh = res_out, p.o_sw = 1;
  ModConvBlocking b = machine_modconv_blocking();
  b.num_threads = pf.num_threads();
  b.small_path = small_path;
  b.winograd = winograd;
  b.up_winograd = up_winograd;
  if (g_shared_v_bytes >= 0) b.wino_shared_v_bytes = g_shared_v_bytes;
  for (ModConvBudget* bb : {&b.direct, &b.wino, &b.up_wino}) {
    if (g_acc_bytes) bb->acc_bytes = g_acc_bytes;
    if (g_xb_bytes) bb->xb_bytes = g_xb_bytes;
    if (g_kc) bb->kc = g_kc;
    if (g_mc) bb->mc = g_mc;
  }

  const double macs = double(H) * W * L.C_in * L.C_out * KK +
                      (L.up ? 16.0 * res_out * res_out * L.C_out : 0.0);
  for (int w = 0; w < 2; ++w) modulated_conv2d_forward<MR, NR>(p, pf, b);
  std::vector<double> times;
  double total = 0;
  while (total < min_time || times.size() < 5) {
    double t0 = now_s();
    modulated_conv2d_forward<MR, NR>(p, pf, b);
    double dt = now_s() - t0;
    times.push_back(dt);
    total += dt;
    if (times.size() >= 1000) break;
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  return {med * 1e3, 2.0 * macs / med / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  double min_time = 0.5;
  bool variants = false, quick = false, paths = false, winograd = false;
  for (int a = 1; a < argc; ++a) {
    if (!std::strcmp(argv[a], "--threads") && a + 1 < argc) threads = std::atoi(argv[++a]);
    else if (!std::strcmp(argv[a], "--min-time") && a + 1 < argc) min_time = std::atof(argv[++a]);
    else if (!std::strcmp(argv[a], "--variants")) variants = true;
    else if (!std::strcmp(argv[a], "--quick")) quick = true;
    else if (!std::strcmp(argv[a], "--paths")) paths = true;
    else if (!std::strcmp(argv[a], "--winograd")) winograd = true;
    else if (!std::strcmp(argv[a], "--cpu")) g_cpu_clock = true;
    else if (!std::strcmp(argv[a], "--acc-kb") && a + 1 < argc) g_acc_bytes = 1024 * std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--xb-kb") && a + 1 < argc) g_xb_bytes = 1024 * std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--kc") && a + 1 < argc) g_kc = std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--mc") && a + 1 < argc) g_mc = std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--shared-v-kb") && a + 1 < argc) g_shared_v_bytes = 1024 * std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--filter") && a + 1 < argc) g_filter = argv[++a];
  }
  ThreadedFor pf(threads);
  if (quick) min_time = 0.1;
  std::printf("anycost modulated conv micro-benchmark: isa=%s threads=%d batch=1 fp32\n",
              simd_isa_name(), pf.num_threads());
  const double peak = measure_peak(pf);
  std::printf("measured FMA peak: %.1f GFLOP/s (%d threads)\n\n", peak, pf.num_threads());

  const Layer layers[] = {
      {"3x3 4px 512->512", 4, 512, 512, false},
      {"3x3 4px 128->128 (r.25)", 4, 128, 128, false},
      {"3x3 8px 128->128 (r.25)", 8, 128, 128, false},
      {"3x3 16px 128->128 (r.25)", 16, 128, 128, false},
      {"3x3 8px 512->512", 8, 512, 512, false},
      {"3x3 16px 512->512", 16, 512, 512, false},
      {"3x3 16px 256->256 (r.5)", 16, 256, 256, false},
      {"3x3 32px 512->512", 32, 512, 512, false},
      {"3x3 32px 256->256 (r.5)", 32, 256, 256, false},
      {"3x3 32px 384->384 (r.75)", 32, 384, 384, false},
      {"3x3 64px 384->384 (r.75)", 64, 384, 384, false},
      {"3x3 128px 192->192 (r.75)", 128, 192, 192, false},
      {"3x3 64px 512->512", 64, 512, 512, false},
      {"3x3 128px 256->256", 128, 256, 256, false},
      {"3x3 256px 128->128", 256, 128, 128, false},
      {"3x3 64px 128->128 (r.25)", 64, 128, 128, false},
      {"3x3 128px 64->64", 128, 64, 64, false},
      {"3x3 256px 32->32", 256, 32, 32, false},
      {"3x3 512px 64->64", 512, 64, 64, false},
      {"3x3 1024px 32->32", 1024, 32, 32, false},
      {"up 4->8 512->512", 4, 512, 512, true},
      {"up 8->16 512->512", 8, 512, 512, true},
      {"up 16->32 512->512", 16, 512, 512, true},
      {"up 4->8 128->128 (r.25)", 4, 128, 128, true},
      {"up 8->16 128->128 (r.25)", 8, 128, 128, true},
      {"up 16->32 128->128 (r.25)", 16, 128, 128, true},
      {"torgb+skip 8px 512->3", 8, 512, 3, false, 1},
      {"up 32->64 512->512", 32, 512, 512, true},
      {"up 64->128 512->256", 64, 512, 256, true},
      {"up 32->64 384->384 (r.75)", 32, 384, 384, true},
      {"up 64->128 384->192 (r.75)", 64, 384, 192, true},
      {"up 64->128 128->64 (r.25)", 64, 128, 64, true},
      {"up 128->256 256->128", 128, 256, 128, true},
      {"up 128->256 64->32", 128, 64, 32, true},
      {"up 256->512 128->64", 256, 128, 64, true},
      {"up 512->1024 64->32", 512, 64, 32, true},
      {"up 512->1024 48->24 (r.75)", 512, 48, 24, true},
      {"up 512->1024 32->16 (r.5)", 512, 32, 16, true},
      {"up 256->512 96->48 (r.75)", 256, 96, 48, true},
      {"3x3 512px 16->16 (r.25)", 512, 16, 16, false},
      {"3x3 1024px 8->8 (r.25)", 1024, 8, 8, false},
      {"up 256->512 32->16 (r.25)", 256, 32, 16, true},
      {"up 512->1024 16->8 (r.25)", 512, 16, 8, true},
      {"torgb+skip 256px 32->3", 256, 32, 3, false, 1},
      {"torgb+skip 1024px 32->3", 1024, 32, 3, false, 1},
  };
  std::printf("%-28s %9s %9s %7s\n", "layer", "ms", "GFLOP/s", "%peak");
  for (const Layer& L : layers) {
    if (g_filter && !std::strstr(L.name, g_filter)) continue;
    Result r = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time);
    std::printf("%-28s %9.3f %9.1f %6.1f%%", L.name, r.ms, r.gflops, 100.0 * r.gflops / peak);
    if (variants) {  // other MR x NR micro-kernel shapes (GFLOP/s)
#if ANYCOST_CPU_AVX512
      Result a = bench_layer<4, 6>(L, pf, min_time), b = bench_layer<6, 4>(L, pf, min_time),
             c = bench_layer<12, 2>(L, pf, min_time), d = bench_layer<4, 3>(L, pf, min_time);
      std::printf("   | 4x6 %6.1f  6x4 %6.1f  12x2 %6.1f  4x3 %6.1f", a.gflops, b.gflops, c.gflops, d.gflops);
#else
      Result r62 = bench_layer<6, 2>(L, pf, min_time);
      Result r81 = bench_layer<8, 1>(L, pf, min_time);
      std::printf("   | 6x2 %6.1f  8x1 %6.1f", r62.gflops, r81.gflops);
#endif
    }
    if (paths) {
      Result large = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, 0);
      Result small = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, 1);
      std::printf("   | large %8.3f ms %5.1f%%  small %8.3f ms %5.1f%%", large.ms,
                  100.0 * large.gflops / peak, small.ms, 100.0 * small.gflops / peak);
    }
    if (winograd && L.K == 3 && !L.up) {
      Result direct = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, -1, 0);
      Result f2 = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, -1, 2);
      Result f4 = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, -1, 4);
      std::printf("   | direct %8.3f ms %5.1f%%  F2 %8.3f ms %5.1f%%  F4 %8.3f ms %5.1f%%", direct.ms,
                  100.0 * direct.gflops / peak, f2.ms, 100.0 * f2.gflops / peak, f4.ms,
                  100.0 * f4.gflops / peak);
    }
    if (winograd && L.up) {
      Result direct = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, -1, -1, 0);
      Result f2 = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, -1, -1, 2);
      Result f4 = bench_layer<kModConvMR, kModConvNR>(L, pf, min_time, -1, -1, 4);
      std::printf("   | direct %8.3f ms %5.1f%%  F2 %8.3f ms %5.1f%%  F4 %8.3f ms %5.1f%%", direct.ms,
                  100.0 * direct.gflops / peak, f2.ms, 100.0 * f2.gflops / peak, f4.ms, 100.0 * f4.gflops / peak);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
