// Micro-benchmark of the int8 styled conv (qconv_blocked.h) against the fp32 fused modulated conv of
// the same level, on config-f layer shapes (plain 3x3, 2x upsampling 3x3 and 1x1, batch 1, noise + bias
// + leaky ReLU).
//
//   bench_qconv_<level> [--threads T] [--rounds R] [--filter TEXT] [--mc N] [--kc N] [--acc-kb N]
//
// Both kernels run interleaved, round-robin, R rounds (default 7); each round times one call of
// each (after a warm-up call). Reported: the median wall ms and the median CPU ms of the calling
// thread (CLOCK_THREAD_CPUTIME_ID; with --threads 1 this is the kernel's whole CPU time and the
// least disturbed by other jobs on a shared machine), GMAC/s (true MACs / CPU median), the fp32 /
// int8 ratio of the CPU medians, and the 1-minute load average when the layer finished.
// int8 includes the activation quantise step and the fp32 epilogue (as a generator call would);
// the weight is packed before timing (once per layer and width in use).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "cpu/modulated_conv_blocked.h"
#include "cpu/parallel.h"
#include "cpu/qconv_blocked.h"

using namespace anycost::cpu;

namespace {

double wall_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Layer {
  const char* name;
  int64_t hw, c_in, c_out;  // hw: the input size
  int k;
  bool up = false;
};

// The first 64-byte aligned float of v (which has 16 floats of slack), as a torch tensor's data is: the
// kernels write large outputs past the caches only from aligned vectors.
float* aligned(std::vector<float>& v) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}

struct Tensors {
  std::vector<float> x, w, styles, noise, bias, out_f, out_q, out_scale;
  std::vector<int8_t> wq, packed;
  std::vector<int32_t> wsum;
};

template <class F>
void time_pair(const F& fp32, const F& int8, int rounds, double t[2][2]) {
  std::vector<double> wall[2], cpu[2];
  fp32();
  int8();
  for (int r = 0; r < rounds; ++r)
    for (int k = 0; k < 2; ++k) {
      const double w0 = wall_s(), c0 = thread_cpu_s();
      (k == 0 ? fp32 : int8)();
      cpu[k].push_back(thread_cpu_s() - c0);
      wall[k].push_back(wall_s() - w0);
    }
  for (int k = 0; k < 2; ++k) t[k][0] = median(wall[k]), t[k][1] = median(cpu[k]);
}

void run_layer(const Layer& L, const ThreadedFor& pf, int rounds, const QConvBlocking& qb) {
  const int64_t hw = L.hw, ci = L.c_in, co = L.c_out, T = int64_t(L.k) * L.k, P = hw * hw;
  const int64_t ho = L.up ? 2 * hw : hw, Po = ho * ho;  // output size
  Tensors t;
  t.x.assign(ci * P, 0.f);
  for (int64_t k = 0; k < ci * P; ++k) t.x[k] = std::sin(0.37f * k);
  t.w.resize(co * ci * T);
  t.wq.resize(co * ci * T);
  for (int64_t k = 0; k < co * ci * T; ++k) {
    t.wq[k] = static_cast<int8_t>((k * 37) % 255 - 127);
    t.w[k] = t.wq[k] / 127.f;
  }
  t.styles.assign(ci, 1.f);
  t.noise.assign(Po, 0.5f);
  t.bias.assign(co, 0.1f);
  t.out_f.resize(co * Po + 16);  // + the slack aligned() takes
  t.out_q.resize(co * Po + 16);
  t.out_scale.assign(co, 1e-4f);
  t.packed.resize(qconv_packed_bytes(co, ci, L.k));
  t.wsum.resize(co * T);

  ModConvParams p;
  p.C_in = ci, p.C_out = co, p.H = p.W = hw, p.K = L.k, p.upsample = L.up;
  p.weight_scale = 1.f / std::sqrt(float(ci * T));
  p.x = t.x.data(), p.x_sn = ci * P, p.x_sc = P, p.x_sh = hw;
  p.weight = t.w.data(), p.w_so = ci * T, p.w_si = T, p.w_sh = L.k;
  p.styles = t.styles.data(), p.s_sn = ci;
  p.noise = t.noise.data(), p.noise_sh = ho, p.noise_strength = 0.1f;
  p.bias = t.bias.data(), p.act = Activation::LRelu;
  p.out = aligned(t.out_f), p.o_sn = co * Po, p.o_sc = Po, p.o_sh = ho;
  ModConvBlocking fb;
  fb.num_threads = pf.num_threads();

  QConvPackParams pp;
  pp.C_out = co, pp.C_in = ci, pp.K = L.k, pp.weight = t.wq.data();
  pp.w_so = ci * T, pp.w_si = T, pp.w_sh = L.k;
  pp.packed = t.packed.data(), pp.wsum = t.wsum.data();
  detail::qconv_pack_weights(pp);
  QConvParams q;
  q.C_in = ci, q.C_out = co, q.H = q.W = hw, q.K = L.k, q.upsample = L.up;
  q.x = t.x.data(), q.x_sn = ci * P, q.x_sc = P, q.x_sh = hw;
  q.styles = t.styles.data(), q.s_sn = ci;
  q.act_scale = 1.f / 127;
  q.packed = t.packed.data(), q.wsum = t.wsum.data();
  q.out_scale = t.out_scale.data(), q.os_sn = co;
  q.noise = t.noise.data(), q.noise_sh = ho, q.noise_strength = 0.1f;
  q.bias = t.bias.data(), q.act = Activation::LRelu;
  q.out = aligned(t.out_q), q.o_sn = co * Po, q.o_sc = Po, q.o_sh = ho;

  double tm[2][2];
  const auto fp32 = [&] { modulated_conv2d_forward(p, pf, fb); };
  const auto int8 = [&] { qconv2d_forward(q, pf, qb); };
  time_pair<std::function<void()>>(fp32, int8, rounds, tm);
  double load = 0;
  getloadavg(&load, 1);
  const double macs = double(P) * ci * co * T;
  std::printf("| %-26s | %8.2f | %8.2f | %7.1f | %8.2f | %8.2f | %7.1f | %5.2fx | %4.1f |\n", L.name, tm[0][0] * 1e3,
              tm[0][1] * 1e3, macs / tm[0][1] * 1e-9, tm[1][0] * 1e3, tm[1][1] * 1e3, macs / tm[1][1] * 1e-9,
              tm[0][1] / tm[1][1], load);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, rounds = 7;
  const char* filter = nullptr;
  QConvBlocking qb;
  for (int a = 1; a < argc; ++a) {
    if (!std::strcmp(argv[a], "--threads") && a + 1 < argc) threads = std::atoi(argv[++a]);
    else if (!std::strcmp(argv[a], "--rounds") && a + 1 < argc) rounds = std::atoi(argv[++a]);
    else if (!std::strcmp(argv[a], "--filter") && a + 1 < argc) filter = argv[++a];
    else if (!std::strcmp(argv[a], "--mc") && a + 1 < argc) qb.mc = std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--kc") && a + 1 < argc) qb.kc = std::atol(argv[++a]);
    else if (!std::strcmp(argv[a], "--acc-kb") && a + 1 < argc)
      qb.acc_bytes = qb.up_acc_bytes = 1024 * std::atol(argv[++a]);
  }
  ThreadedFor pf(threads);
  qb.num_threads = pf.num_threads();
  std::printf("anycost int8 conv micro-benchmark: isa=%s threads=%d batch=1, median of %d interleaved rounds\n\n",
              simd_isa_name(), pf.num_threads(), rounds);
  std::printf("| layer | fp32 wall ms | fp32 CPU ms | fp32 GMAC/s (CPU) | int8 wall ms | int8 CPU ms "
              "| int8 GMAC/s (CPU) | fp32/int8 (CPU) | load |\n|---|---|---|---|---|---|---|---|---|\n");
  const Layer layers[] = {
      {"3x3 4px 512->512", 4, 512, 512, 3},       {"3x3 8px 512->512", 8, 512, 512, 3},
      {"3x3 16px 512->512", 16, 512, 512, 3},     {"3x3 32px 512->512", 32, 512, 512, 3},
      {"3x3 64px 512->512", 64, 512, 512, 3},     {"3x3 128px 256->256", 128, 256, 256, 3},
      {"3x3 256px 128->128", 256, 128, 128, 3},   {"3x3 16px 128->128 (r.25)", 16, 128, 128, 3},
      {"3x3 32px 128->128 (r.25)", 32, 128, 128, 3}, {"3x3 64px 128->128 (r.25)", 64, 128, 128, 3},
      {"3x3 128px 64->64 (r.25)", 128, 64, 64, 3}, {"3x3 256px 32->32 (r.25)", 256, 32, 32, 3},
      {"1x1 64px 512->512", 64, 512, 512, 1},
      {"up 8->16 512->512", 8, 512, 512, 3, true},  {"up 16->32 512->512", 16, 512, 512, 3, true},
      {"up 32->64 512->512", 32, 512, 512, 3, true}, {"up 64->128 512->256", 64, 512, 256, 3, true},
      {"up 128->256 256->128", 128, 256, 128, 3, true}, {"up 256->512 128->64", 256, 128, 64, 3, true},
      {"up 512->1024 64->32", 512, 64, 32, 3, true},  {"up 64->128 128->64 (r.25)", 64, 128, 64, 3, true},
      {"up 128->256 64->32 (r.25)", 128, 64, 32, 3, true},
  };
  for (const Layer& L : layers)
    if (!filter || std::strstr(L.name, filter)) run_layer(L, pf, rounds, qb);
  return 0;
}
