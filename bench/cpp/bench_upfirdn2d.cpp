// Micro-benchmark of upfirdn2d, add_upsampled_skip and bias_act (2 threads).
//
//   bench_upfirdn2d [--threads T]
//
// Reports ms, GFLOP/s (2 x kernel taps actually applied per output / time for
// FIR ops; 3 flops per element for bias_act) and GB/s (bytes read + written).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/bias_act_blocked.h"
#include "cpu/parallel.h"
#include "cpu/upfirdn2d_blocked.h"

using namespace anycost::cpu;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class F>
double time_ms(F f) {
  f();
  std::vector<double> t;
  double total = 0;
  while (total < 0.3 || t.size() < 5) {
    double t0 = now_s();
    f();
    double dt = now_s() - t0;
    t.push_back(dt);
    total += dt;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2] * 1e3;
}

void fir_case(const char* name, int64_t C, int64_t H, int up, int down, int64_t pad0,
              int64_t pad1, const ThreadedFor& pf) {
  std::vector<float> k;
  const float k1[4] = {1, 3, 3, 1};
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) k.push_back(k1[a] * k1[b] / 64.f * float(up * up));
  UpFirDn2dParams p;
  p.N = 1, p.C = C, p.H = H, p.W = H;
  std::vector<float> x(C * H * H, 0.5f);
  p.x = x.data(), p.x_sn = C * H * H, p.x_sc = H * H, p.x_sh = H, p.x_sw = 1;
  p.kernel = k.data(), p.kh = p.kw = 4, p.k_sh = 4, p.k_sw = 1;
  p.up_x = p.up_y = up, p.down_x = p.down_y = down;
  p.pad_x0 = p.pad_y0 = pad0, p.pad_x1 = p.pad_y1 = pad1;
  const int64_t Ho = p.H_out(), Wo = p.W_out();
  std::vector<float> out(C * Ho * Wo);
  p.out = out.data(), p.o_sn = C * Ho * Wo, p.o_sc = Ho * Wo, p.o_sh = Wo, p.o_sw = 1;
  const double ms = time_ms([&] { upfirdn2d(p, pf); });
  // Non-zero taps per output: 16 / up^2.
  const double flops = 2.0 * C * Ho * Wo * 16.0 / (up * up);
  const double bytes = 4.0 * (x.size() + out.size());
  std::printf("%-34s %8.3f ms %7.1f GFLOP/s %7.1f GB/s\n", name, ms, flops / ms / 1e6,
              bytes / ms / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  for (int a = 1; a < argc; ++a)
    if (!std::strcmp(argv[a], "--threads") && a + 1 < argc) threads = std::atoi(argv[++a]);
  ThreadedFor pf(threads);
  std::printf("anycost upfirdn2d / bias_act micro-benchmark: isa=%s threads=%d\n",
              simd_isa_name(), pf.num_threads());
  fir_case("upfirdn2d up2 pad(2,1) 3x512^2", 3, 512, 2, 1, 2, 1, pf);
  fir_case("upfirdn2d blur pad(1,1) 128x128^2", 128, 128, 1, 1, 1, 1, pf);
  fir_case("upfirdn2d down2 pad(1,1) 128x128^2", 128, 128, 1, 2, 1, 1, pf);
  {
    const int64_t C = 3, H = 512;
    std::vector<float> skip(C * H * H, 0.5f), out(C * 4 * H * H, 0.f);
    AddUpsampledSkipParams p;
    p.N = 1, p.C = C, p.H = H, p.W = H;
    p.skip = skip.data(), p.s_sn = C * H * H, p.s_sc = H * H, p.s_sh = H, p.s_sw = 1;
    p.out = out.data(), p.o_sn = C * 4 * H * H, p.o_sc = 4 * H * H, p.o_sh = 2 * H, p.o_sw = 1;
    const double ms = time_ms([&] { add_upsampled_skip(p, pf); });
    const double bytes = 4.0 * (skip.size() + 2 * out.size());
    std::printf("%-34s %8.3f ms %7.1f GFLOP/s %7.1f GB/s\n", "add_upsampled_skip 3x512^2", ms,
                2.0 * 4 * out.size() / ms / 1e6, bytes / ms / 1e6);
  }
  {
    const int64_t C = 512, S = 64 * 64;
    std::vector<float> x(C * S, 0.5f), b(C, 0.1f);
    BiasActParams p;
    p.N = 1, p.C = C, p.S = S;
    p.x = x.data(), p.x_sn = C * S, p.x_sc = S, p.x_ss = 1;
    p.out = x.data(), p.o_sn = C * S, p.o_sc = S, p.o_ss = 1;
    p.bias = b.data(), p.act = Activation::LRelu, p.gain = 1.41421356f;
    const double ms = time_ms([&] { bias_act(p, pf); });
    std::printf("%-34s %8.3f ms %7.1f GFLOP/s %7.1f GB/s\n", "bias_act lrelu in-place 512x64^2",
                ms, 3.0 * x.size() / ms / 1e6, 8.0 * x.size() / ms / 1e6);
  }
  return 0;
}
