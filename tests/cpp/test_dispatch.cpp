// The run-time dispatch library (kernels/cpu/dispatch.cpp + isa_<level>.cpp, as linked into the
// Python extension): every level this CPU has runs the kernels correctly through its table, and
// the level choice reports bad levels clearly. This file is baseline code.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../kernels/cpu/dispatch.h"
#include "naive_ref.h"
#include "test_util.h"

using namespace anycost::cpu;

namespace {

ParallelFn two_threads() {
  static ThreadedFor pool(2);
  ParallelFn fn;
  fn.ctx = &pool;
  fn.run = [](void* ctx, int64_t b, int64_t e, int64_t grain, ParallelFn::Body body, void* body_ctx) {
    (*static_cast<ThreadedFor*>(ctx))(b, e, grain, [&](int64_t b0, int64_t e0) { body(body_ctx, b0, e0); });
  };
  return fn;
}

// One modulated conv through `t`, compared with the naive reference.
testutil::CompareResult modconv(const KernelTable& t, int64_t c_in, int64_t c_out, int64_t hw, bool up,
                                uint32_t seed) {
  std::vector<float> w = testutil::random_vec(c_out * c_in * 9, seed), s = testutil::random_vec(c_in, seed + 1, 0.5f, 1.5f),
                     x = testutil::random_vec(c_in * hw * hw, seed + 2), noise = testutil::random_vec(4 * hw * hw, seed + 3);
  ModConvParams p;
  p.C_in = c_in, p.C_out = c_out, p.H = p.W = hw, p.upsample = up;
  p.weight_scale = 1.f / std::sqrt(float(c_in * 9));
  p.x = x.data(), p.x_sc = hw * hw, p.x_sh = hw, p.x_sn = c_in * hw * hw;
  p.weight = w.data(), p.w_so = c_in * 9, p.w_si = 9, p.w_sh = 3;
  p.styles = s.data(), p.s_sn = c_in;
  p.noise = noise.data(), p.noise_sh = p.W_out(), p.noise_strength = 0.3f;
  p.act = Activation::LRelu;
  const int64_t ho = p.H_out(), wo = p.W_out();
  std::vector<float> out(c_out * ho * wo, NAN);
  p.out = out.data(), p.o_sn = c_out * ho * wo, p.o_sc = ho * wo, p.o_sh = wo;
  ModConvBlocking b;
  b.num_threads = 2;
  t.modulated_conv2d(p, b, two_threads());
  return testutil::compare(naive::modulated_conv2d(p), [&](size_t k) { return double(out[k]); });
}

// One int8 conv through `t` (out_scale 1, no epilogue: the output is the accumulator), compared exactly with
// a textbook int32 conv of the same integers. Returns the number of mismatches.
int qconv_mismatches(const KernelTable& t) {
  const int64_t c_in = 13, c_out = 11, hw = 9;
  std::vector<int8_t> w(c_out * c_in * 9);
  for (size_t k = 0; k < w.size(); ++k) w[k] = static_cast<int8_t>(int(k * 37 % 255) - 127);
  std::vector<float> x = testutil::random_vec(c_in * hw * hw, 3, -2.f, 2.f), s(c_in, 1.f), ones(c_out, 1.f);
  std::vector<int8_t> packed(qconv_packed_bytes(c_out, c_in, 3));
  std::vector<int32_t> wsum(c_out * 9);
  QConvPackParams pp;
  pp.C_out = c_out, pp.C_in = c_in, pp.weight = w.data(), pp.w_so = c_in * 9, pp.w_si = 9, pp.w_sh = 3;
  pp.packed = packed.data(), pp.wsum = wsum.data();
  t.qconv.pack(pp);
  QConvParams p;
  p.C_in = c_in, p.C_out = c_out, p.H = p.W = hw, p.act_scale = 0.02f;
  p.x = x.data(), p.x_sn = c_in * hw * hw, p.x_sc = hw * hw, p.x_sh = hw;
  p.styles = s.data(), p.s_sn = c_in;
  p.packed = packed.data(), p.wsum = wsum.data(), p.out_scale = ones.data(), p.os_sn = c_out;
  std::vector<float> out(c_out * hw * hw, NAN);
  p.out = out.data(), p.o_sn = c_out * hw * hw, p.o_sc = hw * hw, p.o_sh = hw;
  QConvBlocking b;
  b.num_threads = 2;
  t.qconv.conv2d(p, b, two_threads());
  int bad = 0;
  for (int64_t o = 0; o < c_out; ++o)
    for (int64_t y = 0; y < hw; ++y)
      for (int64_t xx = 0; xx < hw; ++xx) {
        int64_t acc = 0;
        for (int64_t i = 0; i < c_in; ++i)
          for (int64_t k = 0; k < 9; ++k) {
            const int64_t yy = y + k / 3 - 1, xc = xx + k % 3 - 1;
            if (yy < 0 || yy >= hw || xc < 0 || xc >= hw) continue;
            const float v = std::min(127.f, std::max(-127.f, x[(i * hw + yy) * hw + xc] * (1.f / p.act_scale)));
            acc += int64_t(w[(o * c_in + i) * 9 + k]) * int64_t(std::nearbyint(v));
          }
        bad += out[(o * hw + y) * hw + xx] != float(acc);
      }
  return bad;
}

}  // namespace

TEST(Dispatch, EveryLevelOfThisCpuMatchesTheReference) {
  const std::vector<Capability> levels = cpu_capabilities();
  ASSERT_TRUE(!levels.empty() && levels.front() == Capability::Portable);
  for (Capability c : levels) {
    const KernelTable* t = compiled_kernels(c);
    ASSERT_TRUE(t != nullptr);
    EXPECT_EQ(std::string(t->name), std::string(capability_name(c)));
    EXPECT_EQ(t->vec_len, c >= Capability::AVX512 ? 16 : 8);
    // Each level runs the int8 kernels compiled for it (avx512_vnni: its own; the fp32 ones are avx512's).
    EXPECT_EQ(std::string(t->qconv.name), std::string(capability_name(c)));
    if (c == Capability::AVX512VNNI)
      EXPECT_TRUE(t->modulated_conv2d == compiled_kernels(Capability::AVX512)->modulated_conv2d);
    EXPECT_EQ(qconv_mismatches(*t), 0) << capability_name(c) << " int8 conv";
    // Blocked path (plain and upsampling) and the small-image path (many channels at 4 px).
    const int64_t cases[3][4] = {{24, 40, 19, 0}, {24, 40, 13, 1}, {96, 48, 4, 1}};
    for (const auto& k : cases) {
      auto r = modconv(*t, k[0], k[1], k[2], k[3] != 0, 7);
      EXPECT_TRUE(r.ok) << capability_name(c) << " c_in=" << k[0] << " hw=" << k[2] << " " << r.msg();
    }
    BiasActParams ba;
    std::vector<float> x = testutil::random_vec(3 * 37, 5), bias = testutil::random_vec(3, 6), out(3 * 37);
    ba.C = 3, ba.S = 37, ba.x = x.data(), ba.x_sc = 37, ba.x_sn = 3 * 37, ba.bias = bias.data();
    ba.out = out.data(), ba.o_sc = 37, ba.o_sn = 3 * 37, ba.act = Activation::LRelu, ba.gain = 2.f;
    t->bias_act(ba, two_threads());
    auto r = testutil::compare(naive::bias_act(ba), [&](size_t k) { return double(out[k]); }, 1e-6);
    EXPECT_TRUE(r.ok) << capability_name(c) << " bias_act " << r.msg();
  }
}

TEST(Dispatch, ChoiceAndErrors) {
  Capability c;
  EXPECT_TRUE(parse_capability("avx2", &c) && c == Capability::AVX2);
  EXPECT_FALSE(parse_capability("AVX2", &c));
  set_active_capability("");
  EXPECT_EQ(active_kernels().level, cpu_capabilities().back());
  set_active_capability("portable");
  EXPECT_EQ(active_kernels().level, Capability::Portable);
  std::string msg;
  try {
    set_active_capability("avx1024");
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  EXPECT_EQ(msg, std::string("anycost: level='avx1024' is not a CPU level: use portable, avx2, avx512 or avx512_vnni"));
  EXPECT_EQ(active_kernels().level, Capability::Portable);  // unchanged by the failed call
  limit_cpu_capabilities_for_testing(0);  // pretend: a CPU without AVX2
  msg.clear();
  try {
    set_active_capability("avx2");
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  EXPECT_EQ(msg, std::string("anycost: level=avx2 asks for a level this CPU lacks; it supports portable"));
  limit_cpu_capabilities_for_testing(-1);
  set_active_capability("");
}

TEST(Dispatch, BlockingFollowsTheL2) {
  // Below 1 MiB of L2 (and when unknown) both paths keep the defaults; from 1 MiB both take larger
  // accumulator tiles, the Winograd path larger output-channel blocks and the direct path larger input
  // blocks; from 2 MiB the Winograd path takes larger blocks still and the direct path keeps the
  // defaults.
  const ModConvBudget def;
  for (int64_t l2 : {int64_t(0), int64_t(512) << 10, (int64_t(1) << 20) - 1}) {
    const ModConvBlocking b = modconv_blocking_for_l2(l2);
    EXPECT_EQ(b.wino.mc, def.mc);
    EXPECT_EQ(b.wino.acc_bytes, def.acc_bytes);
    EXPECT_EQ(b.direct.kc, def.kc);
    EXPECT_EQ(b.direct.acc_bytes, def.acc_bytes);
    EXPECT_EQ(b.small_b_bytes, ModConvBlocking().small_b_bytes);
    EXPECT_EQ(b.small_y_bytes, ModConvBlocking().small_y_bytes);
  }
  const ModConvBlocking mid = modconv_blocking_for_l2(int64_t(1) << 20);
  EXPECT_EQ(mid.direct.kc, 128);
  EXPECT_EQ(mid.direct.acc_bytes, 768 * 1024);
  EXPECT_EQ(mid.wino.acc_bytes, 768 * 1024);
  EXPECT_EQ(mid.wino.kc, def.kc);
  EXPECT_EQ(mid.wino.mc, 128);
  EXPECT_EQ(mid.direct.mc, def.mc);
  EXPECT_EQ(mid.small_b_bytes, 256 * 1024);  // the small-image path's blocks twice the defaults
  EXPECT_EQ(mid.small_y_bytes, 384 * 1024);
  const ModConvBlocking big = modconv_blocking_for_l2(int64_t(2) << 20);
  EXPECT_EQ(big.wino.mc, 128);
  EXPECT_EQ(big.wino.kc, 64);
  EXPECT_EQ(big.direct.mc, def.mc);
  EXPECT_EQ(big.direct.acc_bytes, def.acc_bytes);
  EXPECT_LE(0, l2_cache_bytes());
}
