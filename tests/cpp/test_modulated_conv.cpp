// Fused modulated conv vs the naive double-precision reference.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "naive_ref.h"
#include "test_util.h"

using namespace anycost::cpu;

namespace {

struct Case {
  int64_t N = 1, C_in = 23, C_out = 17, H = 5, W = 5;
  int K = 3;
  bool up = false, demod = true;
  bool noise = false, noise_bcast = false, bias = false, act = false, skip = false;
  int x_layout = 0;     // 0 contiguous, 1 channels-last, 2 strided + padded storage
  bool out_strided = false;
  int blocking = 0;     // 0 default, 1 tiny blocks (many chunks / kc blocks / carries), 2 the large-L2 ones,
                        // 3 the 1 MiB-L2 ones
  int threads = 1;
  int small = -1;       // ModConvBlocking::small_path: -1 auto, 0 never, 1 always
  int wino = -1;        // ModConvBlocking::winograd: -1 auto, 0 never, 2 or 4 that tile
  int up_wino = -1;     // ModConvBlocking::up_winograd: -1 auto, 0 never, 2 or 4 that tile
  bool shared_v = true; // the plain Winograd path's input transformed once for all channel blocks when it fits
                        // (ModConvBlocking::wino_shared_v_bytes), else once per block
  bool w_taps_outer = false;  // weight stored [C_out, K, K, C_in] (non-contiguous taps)
  int rgb = 0;          // RGB head: 0 none, 1 with the conv's output, 2 without it (out null)
  bool rgb_skip = false;
  std::string str() const {
    std::ostringstream os;
    os << "N=" << N << " Cin=" << C_in << " Cout=" << C_out << " H=" << H << " W=" << W
       << " K=" << K << " up=" << up << " demod=" << demod << " noise=" << noise
       << " bcast=" << noise_bcast << " bias=" << bias << " act=" << act << " skip=" << skip
       << " xlayout=" << x_layout << " ostrided=" << out_strided << " blocking=" << blocking
       << " threads=" << threads << " small=" << small << " wino=" << wino << " up_wino=" << up_wino
       << " shared_v=" << shared_v << " wtaps=" << w_taps_outer << " rgb=" << rgb << " rgb_skip=" << rgb_skip;
    return os.str();
  }
};

template <int MR = kModConvMR, int NR = kModConvNR>
testutil::CompareResult run_case(const Case& c, uint32_t seed) {
  const int64_t Cf_out = std::max<int64_t>(40, c.C_out + 5), Cf_in = std::max<int64_t>(50, c.C_in + 7);
  const int64_t K = c.K;
  const int64_t o_off = 3, i_off = 5;
  // Full weight [>=40, >=50, K, K]; the kernel sees the slice [3:3+C_out, 5:5+C_in].
  std::vector<float> wfull = testutil::random_vec(Cf_out * Cf_in * K * K, seed + 1);
  std::vector<float> styles = testutil::random_vec(c.N * c.C_in, seed + 2, 0.2f, 2.0f);
  ModConvParams p;
  p.N = c.N, p.C_in = c.C_in, p.C_out = c.C_out, p.H = c.H, p.W = c.W, p.K = c.K;
  p.upsample = c.up;
  p.demodulate = c.demod;
  p.weight_scale = 1.f / std::sqrt(float(Cf_in * K * K));
  p.w_so = Cf_in * K * K, p.w_si = K * K, p.w_sh = K, p.w_sw = 1;
  if (c.w_taps_outer) p.w_si = 1, p.w_sh = K * Cf_in, p.w_sw = Cf_in;
  p.weight = wfull.data() + o_off * p.w_so + i_off * p.w_si;
  p.styles = styles.data(), p.s_sn = c.C_in, p.s_sc = 1;

  // Input storage per layout.
  std::vector<float> xs;
  const int64_t N = c.N, C = c.C_in, H = c.H, W = c.W;
  if (c.x_layout == 0) {
    xs = testutil::random_vec(N * C * H * W, seed + 3);
    p.x = xs.data(), p.x_sn = C * H * W, p.x_sc = H * W, p.x_sh = W, p.x_sw = 1;
  } else if (c.x_layout == 1) {
    xs = testutil::random_vec(N * H * W * C, seed + 3);
    p.x = xs.data(), p.x_sn = H * W * C, p.x_sc = 1, p.x_sh = W * C, p.x_sw = C;
  } else {
    const int64_t sw = 2, sh = 2 * W + 5, sc = (H + 3) * sh, sn = (C + 2) * sc;
    xs = testutil::random_vec(N * sn, seed + 3);
    p.x = xs.data() + sc + sh + 1, p.x_sn = sn, p.x_sc = sc, p.x_sh = sh, p.x_sw = sw;
  }
  const int64_t Ho = p.H_out(), Wo = p.W_out();
  std::vector<float> noise, bias, skip;
  if (c.noise) {
    noise = testutil::random_vec((c.noise_bcast ? 1 : N) * Ho * Wo, seed + 4);
    p.noise = noise.data(), p.noise_sn = c.noise_bcast ? 0 : Ho * Wo, p.noise_sh = Wo,
    p.noise_sw = 1;
    p.noise_strength = 0.37f;
  }
  if (c.bias) {
    bias = testutil::random_vec(2 * c.C_out, seed + 5);
    p.bias = bias.data(), p.bias_s = 2;  // strided bias view
  }
  if (c.act) p.act = Activation::LRelu, p.act_alpha = 0.2f, p.act_gain = std::sqrt(2.f);
  if (c.skip) {
    skip = testutil::random_vec(N * c.C_out * (H / 2) * (W / 2), seed + 6);
    p.skip = skip.data(), p.skip_sn = c.C_out * (H / 2) * (W / 2), p.skip_sc = (H / 2) * (W / 2),
    p.skip_sh = W / 2, p.skip_sw = 1;
  }
  const int64_t osh = c.out_strided ? Wo + 3 : Wo;
  std::vector<float> out(N * c.C_out * Ho * osh, NAN);
  p.out = out.data(), p.o_sn = c.C_out * Ho * osh, p.o_sc = Ho * osh, p.o_sh = osh, p.o_sw = 1;
  std::vector<float> demod(N * c.C_out, NAN);
  p.demod_out = demod.data(), p.d_sn = c.C_out, p.d_sc = 1;
  std::vector<float> peak(N * c.C_out, 0.f);
  p.out_peak = peak.data();
  std::vector<float> rgb_w, rgb_bias, rgb_skip, rgb(N * kRgbChannels * H * W, NAN);
  if (c.rgb) {
    rgb_w = testutil::random_vec(N * kRgbChannels * c.C_out, seed + 7);
    rgb_bias = testutil::random_vec(kRgbChannels, seed + 8);
    p.rgb.w = rgb_w.data(), p.rgb.bias = rgb_bias.data(), p.rgb.out = rgb.data();
    if (c.rgb_skip) {  // a channels-last view, as strides are free
      rgb_skip = testutil::random_vec(N * kRgbChannels * (H / 2) * (W / 2), seed + 9);
      p.rgb.skip = rgb_skip.data(), p.rgb.skip_sn = kRgbChannels * (H / 2) * (W / 2), p.rgb.skip_sc = 1,
      p.rgb.skip_sh = (W / 2) * kRgbChannels, p.rgb.skip_sw = kRgbChannels;
    }
    if (c.rgb == 2) p.out = nullptr;
  }

  ModConvBlocking b;
  if (c.blocking == 1) {
    b.direct = b.wino = b.up_wino = ModConvBudget{4, 5, 1, 1};
  } else if (c.blocking == 2) {
    b = modconv_blocking_for_l2(2 << 20);  // the large-L2 blocks
  } else if (c.blocking == 3) {
    b = modconv_blocking_for_l2(1 << 20);
  }
  b.num_threads = c.threads;
  b.small_path = c.small;
  b.winograd = c.wino;
  b.up_winograd = c.up_wino;
  if (!c.shared_v) b.wino_shared_v_bytes = 0;
  if (c.threads == 1)
    modulated_conv2d_forward<MR, NR>(p, SerialFor(), b);
  else
    modulated_conv2d_forward<MR, NR>(p, ThreadedFor(c.threads), b);

  const std::vector<double> ref = naive::modulated_conv2d(p);
  // F(4x4, 3x3)'s transforms (entries up to 8 and 1/24) amplify the roundings: its error measured
  // 1-2e-5 of the outputs' rms here, 10x the direct path's, so it gets 1e-4 instead of 1e-5; so does
  // the upsampling conv's F(4x4, 2x2) (entries up to 8 and 1/6).
  const bool wino4 = detail::winograd_tile(p, b.winograd) == 4 || detail::winograd_up_tile(p, b.up_winograd) == 4;
  const double rtol = wino4 ? 1e-4 : 1e-5;
  testutil::CompareResult res;
  if (p.out)
    res = testutil::compare(ref, [&](size_t k) {
      const int64_t x = k % Wo, y = (k / Wo) % Ho, o = (k / (Wo * Ho)) % c.C_out,
                    n = k / (Wo * Ho * c.C_out);
      return double(out[n * p.o_sn + o * p.o_sc + y * p.o_sh + x]);
    }, rtol);
  else if (!std::all_of(out.begin(), out.end(), [](float v) { return std::isnan(v); }))
    res.ok = false, std::printf("the output was written without p.out\n");
  const std::string peaks =
      p.out ? testutil::check_peaks(peak, out.data(), N, c.C_out, Ho, Wo, p.o_sn, p.o_sc, p.o_sh)
            : std::all_of(peak.begin(), peak.end(), [](float v) { return v == 0.f; }) ? "" : "out_peak set without out";
  if (!peaks.empty()) res.ok = false, std::printf("%s\n", peaks.c_str());
  if (c.rgb) {
    const testutil::CompareResult r = testutil::compare(naive::rgb_head(p, ref), [&](size_t k) {
      return double(rgb[k]);
    }, rtol);
    if (!r.ok) res.ok = false, std::printf("RGB head: %s\n", r.msg().c_str());
  }
  if (c.demod) {
    // Demodulation coefficients.
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < c.C_out; ++o) {
        double ss = 0;
        for (int64_t i = 0; i < c.C_in; ++i)
          for (int64_t t = 0; t < K * K; ++t) {
            double v = double(p.weight_scale) *
                       p.weight[o * p.w_so + i * p.w_si + (t / K) * p.w_sh + (t % K) * p.w_sw] *
                       styles[n * c.C_in + i];
            ss += v * v;
          }
        const double d = 1.0 / std::sqrt(ss + 1e-8);
        if (!(std::fabs(demod[n * c.C_out + o] - d) <= 1e-5 * d)) {
          res.ok = false;
          std::printf("demod mismatch n=%d o=%d got %g want %g\n", int(n), int(o), demod[n * c.C_out + o], d);
        }
      }
  }
  return res;
}

// The shared sweep of the layout/epilogue tests: kind 0 = 1x1, 1 = 3x3, 2 = 3x3 up; the variant picks the
// noise / bias / activation / input-layout / output-stride combination.
Case sweep_case(int64_t hw, int kind, int64_t N, int variant) {
  Case c;
  c.N = N, c.H = hw, c.W = hw;
  c.K = kind == 0 ? 1 : 3;
  c.up = kind == 2;
  c.demod = (variant % 2 == 0) != (kind == 0);
  c.noise = variant >= 1;
  c.noise_bcast = variant == 2;
  c.bias = variant != 1;
  c.act = variant >= 2;
  c.x_layout = variant % 3;
  c.out_strided = variant == 3;
  c.threads = 1 + (variant + static_cast<int>(N)) % 3;
  c.skip = kind == 0 && variant == 1 && hw % 2 == 0;
  return c;
}

}  // namespace

TEST(ModulatedConv, SizesLayoutsAndEpilogues) {
  const int64_t sizes[] = {1, 3, 4, 5, 8, 13};
  uint32_t seed = 100;
  int count = 0;
  for (int64_t hw : sizes)
    for (int kind = 0; kind < 3; ++kind)  // 0: 1x1, 1: 3x3, 2: 3x3 up
      for (int64_t N : {1, 3})
        for (int variant = 0; variant < 4; ++variant) {
          Case c = sweep_case(hw, kind, N, variant);
          c.blocking = (variant + kind) % 2;
          SCOPED_TRACE(c.str());
          auto r = run_case(c, seed++);
          EXPECT_TRUE(r.ok) << r.msg();
          ++count;
        }
  EXPECT_EQ(count, 6 * 3 * 2 * 4);
}

TEST(ModulatedConv, NonSquareAndChannelCounts) {
  uint32_t seed = 900;
  struct S {
    int64_t cin, cout, h, w;
  };
  const S shapes[] = {{1, 1, 7, 3}, {2, 9, 3, 11}, {9, 2, 13, 4}, {47, 37, 6, 9}, {16, 32, 8, 8}};
  for (const S& s : shapes)
    for (int kind = 0; kind < 3; ++kind)
      for (int blocking = 0; blocking < 2; ++blocking) {
        Case c;
        c.C_in = s.cin, c.C_out = s.cout, c.H = s.h, c.W = s.w;
        c.K = kind == 0 ? 1 : 3;
        c.up = kind == 2;
        c.demod = kind != 0;
        c.bias = c.act = c.noise = true;
        c.x_layout = blocking ? 2 : 0;
        c.blocking = blocking;
        c.threads = 2;
        SCOPED_TRACE(c.str());
        auto r = run_case(c, seed++);
        EXPECT_TRUE(r.ok) << r.msg();
      }
}

TEST(ModulatedConv, ToRgbWithFusedSkip) {
  uint32_t seed = 1500;
  for (int64_t hw : {2, 4, 8, 14})
    for (int64_t N : {1, 3}) {
      Case c;
      c.N = N, c.C_in = 23, c.C_out = 3, c.H = hw, c.W = hw;
      c.K = 1, c.demod = false, c.bias = true, c.skip = true;
      c.threads = 2;
      SCOPED_TRACE(c.str());
      auto r = run_case(c, seed++);
      EXPECT_TRUE(r.ok) << r.msg();
    }
}

TEST(ModulatedConv, OtherMicroKernelShapes) {
  uint32_t seed = 2000;
  for (int kind = 0; kind < 3; ++kind)
    for (int64_t hw : {3, 8, 13}) {
      Case c;
      c.H = hw, c.W = hw, c.K = kind == 0 ? 1 : 3, c.up = kind == 2;
      c.bias = c.act = c.noise = true;
      c.blocking = hw == 8;
      c.threads = 2;
      SCOPED_TRACE(c.str());
      auto r1 = run_case<6, 2>(c, seed++);
      EXPECT_TRUE(r1.ok) << "6x2 " << r1.msg();
      auto r2 = run_case<8, 1>(c, seed++);
      EXPECT_TRUE(r2.ok) << "8x1 " << r2.msg();
      auto r3 = run_case<2, 4>(c, seed++);
      EXPECT_TRUE(r3.ok) << "2x4 " << r3.msg();
    }
}

TEST(ModulatedConv, LargerBandsAndCarries) {
  // Bigger images where the default blocking makes several chunks per band
  // (upsampling carry path) and several channel blocks; also with the 1 MiB-L2 blocks (several
  // 128-channel input blocks).
  uint32_t seed = 3000;
  for (int kind = 1; kind < 3; ++kind)
    for (int threads : {1, 2})
      for (int64_t c_in : {37, 300}) {
        Case c;
        c.N = 1, c.C_in = c_in, c.C_out = 33, c.H = 37, c.W = 29, c.K = 3, c.up = kind == 2;
        c.bias = c.act = c.noise = true;
        c.threads = threads;
        c.blocking = c_in == 300 ? 3 : 0;
        SCOPED_TRACE(c.str());
        auto r = run_case(c, seed++);
        EXPECT_TRUE(r.ok) << r.msg();
      }
}

TEST(ModulatedConv, SmallPathEveryKindAndLayout) {
  // The style-on-input GEMM path (modconv_small.h), forced on every shape.
  const int64_t sizes[] = {1, 2, 3, 4, 5, 8, 13};
  uint32_t seed = 4000;
  for (int64_t hw : sizes)
    for (int kind = 0; kind < 3; ++kind)
      for (int64_t N : {1, 3, 4})
        for (int variant = 0; variant < 4; ++variant) {
          Case c = sweep_case(hw, kind, N, variant);
          c.W = hw + (variant == 3);
          c.w_taps_outer = variant == 1 || variant == 2;
          c.small = 1;
          SCOPED_TRACE(c.str());
          auto r = run_case(c, seed++);
          EXPECT_TRUE(r.ok) << r.msg();
        }
}

TEST(ModulatedConv, SmallPathLargeChannelsTinyImages) {
  // Shapes the automatic choice sends to the small path (many channels, <= 16x16 px),
  // several K blocks and channel blocks; both paths must agree with the reference.
  uint32_t seed = 5000;
  struct S {
    int64_t cin, cout, h, w;
    bool up;
  };
  const S shapes[] = {{200, 70, 4, 4, false}, {200, 70, 4, 4, true},   {96, 130, 8, 8, false},
                      {96, 33, 8, 8, true},   {64, 64, 16, 16, true},  {517, 13, 2, 3, false},
                      {40, 9, 7, 5, true},    {600, 31, 8, 8, false}};
  for (const S& s : shapes)
    for (int small : {-1, 0, 1})
      for (int64_t N : {1, 3}) {
        Case c;
        c.N = N, c.C_in = s.cin, c.C_out = s.cout, c.H = s.h, c.W = s.w, c.up = s.up;
        c.bias = c.act = c.noise = true;
        c.small = small;
        c.threads = 2;
        SCOPED_TRACE(c.str());
        auto r = run_case(c, seed++);
        EXPECT_TRUE(r.ok) << r.msg();
      }
  // The automatic choice: small path for the big low-resolution layers only.
  ModConvParams p;
  p.C_in = 512, p.C_out = 512, p.K = 3;
  p.H = p.W = 4;
  EXPECT_TRUE(detail::use_small_path(p, -1));
  p.H = p.W = 8;
  EXPECT_TRUE(detail::use_small_path(p, -1));
  p.H = p.W = 32;
  EXPECT_FALSE(detail::use_small_path(p, -1));
  p.H = p.W = 16;
  EXPECT_FALSE(detail::use_small_path(p, -1));
  p.upsample = true;  // from 16x16 px input the large path with AVX-512's 8 x 3 micro-kernel
  EXPECT_TRUE(detail::use_small_path(p, -1) == !ANYCOST_CPU_AVX512);
  p.H = p.W = 8;
  EXPECT_TRUE(detail::use_small_path(p, -1));
  p.upsample = false;
  p.H = p.W = 4, p.C_in = 8;
  EXPECT_FALSE(detail::use_small_path(p, -1));
  EXPECT_FALSE(detail::use_small_path(p, 0));
}

TEST(ModulatedConv, SmallPathGroupsOfSamples) {
  // A task of the small path takes a group of samples (one read of each weight per group): batches past one group
  // (kSmallGroupPositions) split evenly, the last group shorter; per-sample styles, demodulation, noise, skip.
  uint32_t seed = 5600;
  int planned = 0;
  for (int64_t hw : {4, 8})
    for (int kind = 0; kind < 3; ++kind) {
      Case c;
      c.N = detail::kSmallGroupPositions / (hw * hw) + 3, c.C_in = 40, c.C_out = 11, c.H = c.W = hw;
      c.K = kind == 0 ? 1 : 3;
      c.up = kind == 2;
      c.demod = kind != 0;
      c.bias = c.act = c.noise = true;
      c.skip = kind == 0;
      c.small = 1;
      c.threads = 1 + kind % 2;
      c.blocking = hw == 8 ? 3 : 0;  // the 1 MiB L2's blocks at 8 px
      ModConvParams p;
      p.N = c.N, p.H = c.H, p.W = c.W, p.K = c.K;
      ModConvBlocking b = c.blocking == 3 ? modconv_blocking_for_l2(1 << 20) : ModConvBlocking();
      b.num_threads = c.threads;
      const detail::SmallPlan pl = detail::make_small_plan(p, b);
      EXPECT_EQ(pl.n_groups, 2);
      EXPECT_EQ(pl.G, (c.N + 1) / 2);
      planned += pl.n_groups;
      SCOPED_TRACE(c.str());
      auto r = run_case(c, seed++);
      EXPECT_TRUE(r.ok) << r.msg();
    }
  EXPECT_EQ(planned, 12);
}

// Both tiles of a Winograd path forced on sizes down to 1x1 (sizes that are no multiple of the tile leave part
// tiles at both edges), every input layout / epilogue, tiny blocks (many chunks, K blocks; upsampling: carried
// rows, one-row chunks) and the default ones. kind: 1 the plain 3x3 conv's path, 2 the upsampling conv's.
namespace {
void winograd_sweep(int kind, uint32_t seed) {
  const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 13, 17};
  for (int tile : {2, 4})
  for (int64_t hw : sizes)
    for (int64_t N : {1, 3})
      for (int variant = 0; variant < 4; ++variant)
        for (int blocking = 0; blocking < 2; ++blocking) {
          Case c = sweep_case(hw, kind, N, variant);
          c.W = hw + (variant == 3);
          c.w_taps_outer = variant == 1;
          c.blocking = blocking;
          c.shared_v = variant % 2 == 0;
          (kind == 2 ? c.up_wino : c.wino) = tile;
          SCOPED_TRACE(c.str());
          auto r = run_case(c, seed++);
          EXPECT_TRUE(r.ok) << r.msg();
        }
}
}  // namespace

TEST(ModulatedConv, WinogradEveryShapeAndLayout) {
  // F(2x2, 3x3) and F(4x4, 3x3) (modconv_winograd.h) on plain 3x3 convs.
  winograd_sweep(1, 6000);
}

TEST(ModulatedConv, WinogradUpEveryShapeAndLayout) {
  // The upsampling conv's phase paths F(2x2, 2x2) and F(4x4, 2x2) (modconv_winograd_up.h).
  winograd_sweep(2, 6500);
}

TEST(ModulatedConv, WinogradUpBandsAndChannelBlocks) {
  // Several bands per channel block (threads > channel blocks), several chunks per band, channel blocks with a
  // part slice, K blocks, wide rows, other micro-kernel shapes, the default and the large-L2 blocking.
  uint32_t seed = 7500;
  struct S {
    int64_t cin, cout, h, w;
  };
  const S shapes[] = {{20, 33, 7, 61}, {37, 70, 37, 29}, {64, 64, 32, 32}, {9, 5, 6, 40}, {150, 140, 20, 23},
                      {70, 9, 45, 3}};
  for (const S& s : shapes)
    for (int tile : {2, 4})
    for (int threads : {1, 2, 3}) {
      Case c;
      c.up = true;
      c.C_in = s.cin, c.C_out = s.cout, c.H = s.h, c.W = s.w;
      c.bias = c.act = c.noise = true;
      c.up_wino = tile;
      c.blocking = threads == 2 ? 3 : threads == 3 ? 1 : 0;
      c.threads = threads;
      SCOPED_TRACE(c.str());
      auto r = run_case(c, seed++);
      EXPECT_TRUE(r.ok) << r.msg();
      auto r2 = run_case<4, 2>(c, seed++);
      EXPECT_TRUE(r2.ok) << "4x2 " << r2.msg();
    }
}

TEST(ModulatedConv, WinogradWeightCache) {
  // A named weight (ModConvParams::weight_id) has the plain Winograd path keep its transforms in
  // wino_weight_cache(): the next call reuses them (a weight changed in place without a new version gives the old
  // output, which shows that they were used), a new version rebuilds them. Both tiles, 1-2 threads, batches of 1
  // and 3 (per-sample styles on the input, per-sample demodulation), a sliced view of a larger weight.
  uint32_t seed = 8000;
  const int64_t C_in = 150, C_out = 140, H = 20, W = 23, Cf_out = 160, Cf_in = 157;
  for (int tile : {2, 4})
    for (int threads : {1, 2})
      for (int64_t N : {1, 3}) {
        std::vector<float> wfull = testutil::random_vec(Cf_out * Cf_in * 9, seed++);
        const std::vector<float> styles = testutil::random_vec(N * C_in, seed++, 0.2f, 2.0f);
        const std::vector<float> x = testutil::random_vec(N * C_in * H * W, seed++);
        std::vector<float> out(N * C_out * H * W);
        ModConvParams p;
        p.N = N, p.C_in = C_in, p.C_out = C_out, p.H = H, p.W = W, p.K = 3;
        p.weight_scale = 1.f / std::sqrt(float(Cf_in * 9));
        p.w_so = Cf_in * 9, p.w_si = 9, p.w_sh = 3, p.w_sw = 1;
        p.weight = wfull.data() + 3 * p.w_so + 5 * p.w_si;
        p.styles = styles.data(), p.s_sn = C_in, p.s_sc = 1;
        p.x = x.data(), p.x_sn = C_in * H * W, p.x_sc = H * W, p.x_sh = W, p.x_sw = 1;
        p.out = out.data(), p.o_sn = C_out * H * W, p.o_sc = H * W, p.o_sh = W, p.o_sw = 1;
        p.weight_id = 1000 + seed;  // unique in this test binary
        ModConvBlocking b;
        b.num_threads = threads;
        b.winograd = tile;
        const auto run = [&] {
          std::fill(out.begin(), out.end(), NAN);
          if (threads == 1)
            modulated_conv2d_forward(p, SerialFor(), b);
          else
            modulated_conv2d_forward(p, ThreadedFor(threads), b);
        };
        const auto matches_reference = [&](const char* when) {
          const std::vector<double> ref = naive::modulated_conv2d(p);
          const testutil::CompareResult r = testutil::compare(ref, [&](size_t k) { return double(out[k]); }, 1e-4);
          EXPECT_TRUE(r.ok) << when << " tile=" << tile << " threads=" << threads << " N=" << N << ": " << r.msg();
        };
        const size_t before = wino_weight_cache().bytes();
        run();
        matches_reference("first call");
        EXPECT_TRUE(wino_weight_cache().bytes() > before) << "no entry for tile " << tile;
        const std::vector<float> first = out;
        for (size_t k = 1; k < wfull.size(); k += 2) wfull[k] = -wfull[k];  // same sums of squares, other conv
        run();
        EXPECT_TRUE(std::equal(out.begin(), out.end(), first.begin())) << "the cached transforms were not used";
        ++p.weight_version;
        run();
        matches_reference("new version");
        EXPECT_FALSE(std::equal(out.begin(), out.end(), first.begin())) << "the changed weight gave the old output";
        wino_weight_cache().drop(p.weight_id);  // a freed weight's entries go
        EXPECT_TRUE(wino_weight_cache().bytes() == before) << "drop left " << wino_weight_cache().bytes() - before;
      }
}

TEST(ModulatedConv, WinogradChunksAndChannelBlocks) {
  // Rows wider than one chunk (several column chunks per tile row), several channel blocks and
  // K blocks, both paths, other micro-kernel shapes (the last strip of a chunk is narrower), the
  // default and the large-L2 blocking.
  uint32_t seed = 7000;
  struct S {
    int64_t cin, cout, h, w;
  };
  const S shapes[] = {{20, 33, 7, 601}, {37, 70, 37, 29}, {64, 64, 32, 32}, {9, 5, 6, 40}, {8, 8, 66, 70},
                      {150, 140, 20, 23}};
  int shared_plans = 0;  // cases whose plan transforms the input once for its channel blocks
  for (const S& s : shapes)
    for (int wino : {0, 2, 4})
      for (int threads : {1, 2})
        for (bool shared : {true, false}) {
          if (!wino && !shared) continue;
          Case c;
          c.C_in = s.cin, c.C_out = s.cout, c.H = s.h, c.W = s.w;
          c.bias = c.act = c.noise = true;
          c.wino = wino;
          c.blocking = threads == 2 ? 2 : 0;
          c.threads = threads;
          c.shared_v = shared;
          if (wino && shared) {
            ModConvParams q;
            q.N = 1, q.C_in = c.C_in, q.C_out = c.C_out, q.H = c.H, q.W = c.W, q.K = 3;
            ModConvBlocking b = threads == 2 ? modconv_blocking_for_l2(2 << 20) : ModConvBlocking();
            b.num_threads = threads;
            shared_plans += detail::make_wino_plan(q, b, wino, kModConvMR).shared_v;
          }
          SCOPED_TRACE(c.str());
          auto r = run_case(c, seed++);
          EXPECT_TRUE(r.ok) << r.msg();
          auto r2 = run_case<4, 2>(c, seed++);
          EXPECT_TRUE(r2.ok) << "4x2 " << r2.msg();
        }
  EXPECT_TRUE(shared_plans >= 4) << shared_plans << " plans share the transformed input";
  // The automatic choice: F(4x4) from 64x64 px with 8+ channels each side and from 32x32 px with
  // 256+, F(2x2) from 32x32 px with 32+ and from 16x16 px with 256+, else direct.
  ModConvParams p;
  p.C_in = 512, p.C_out = 512, p.K = 3;
  p.H = p.W = 64;
  EXPECT_EQ(detail::winograd_tile(p, -1), 4);
  p.H = p.W = 32;
  EXPECT_EQ(detail::winograd_tile(p, -1), 4);
  p.C_out = 128;
  EXPECT_EQ(detail::winograd_tile(p, -1), 2);
  p.H = p.W = 16;
  EXPECT_EQ(detail::winograd_tile(p, -1), 0);
  p.C_out = 256;
  EXPECT_EQ(detail::winograd_tile(p, -1), 2);
  p.H = p.W = 8;
  EXPECT_EQ(detail::winograd_tile(p, -1), 0);
  EXPECT_EQ(detail::winograd_tile(p, 4), 4);
  EXPECT_EQ(detail::winograd_tile(p, 2), 2);
  p.H = p.W = 1024, p.C_in = p.C_out = 8;
  EXPECT_EQ(detail::winograd_tile(p, -1), 4);
  p.C_in = 4;
  EXPECT_EQ(detail::winograd_tile(p, -1), 0);
  EXPECT_EQ(detail::winograd_tile(p, 0), 0);
  p.upsample = true;
  EXPECT_EQ(detail::winograd_tile(p, 4), 0);
  // The upsampling conv's: F(4x4, 2x2) from 256x256 px input with 48+ channels each side and from 512x512 px
  // with 24+, or forced.
  p.H = p.W = 512, p.C_in = 64, p.C_out = 32;
  EXPECT_EQ(detail::winograd_up_tile(p, -1), 4);
  p.C_out = 16;
  EXPECT_EQ(detail::winograd_up_tile(p, -1), 0);
  EXPECT_EQ(detail::winograd_up_tile(p, 2), 2);
  EXPECT_EQ(detail::winograd_up_tile(p, 4), 4);
  EXPECT_EQ(detail::winograd_up_tile(p, 3), 0);
  p.H = p.W = 256, p.C_out = 48;
  EXPECT_EQ(detail::winograd_up_tile(p, -1), 4);
  p.C_out = 32;
  EXPECT_EQ(detail::winograd_up_tile(p, -1), 0);
  p.H = p.W = 128, p.C_in = 256, p.C_out = 128;
  EXPECT_EQ(detail::winograd_up_tile(p, -1), 0);
  p.H = p.W = 512;
  EXPECT_EQ(detail::winograd_up_tile(p, 0), 0);
  p.upsample = false;
  EXPECT_EQ(detail::winograd_up_tile(p, 4), 0);
  p.upsample = false, p.K = 1;
  EXPECT_EQ(detail::winograd_tile(p, 2), 0);
}

TEST(ModulatedConv, RgbHeadEveryPath) {
  // The fused ToRGB on the direct path (3x3 and 1x1) and both Winograd tiles: with and without the
  // conv's output and the skip, one or several channel blocks (partial planes), part tiles, column
  // chunks, batches, threads.
  uint32_t seed = 8000;
  struct S {
    int64_t cin, cout, h, w;
    int k;
  };
  const S shapes[] = {{23, 17, 6, 10, 3}, {20, 33, 8, 602, 3}, {9, 70, 7, 9, 3}, {16, 12, 12, 12, 1}};
  for (const S& s : shapes)
    for (int wino : {0, 2, 4})
      for (int variant = 0; variant < 4; ++variant) {
        if (s.k == 1 && wino) continue;
        Case c;
        c.C_in = s.cin, c.C_out = s.cout, c.H = s.h, c.W = s.w, c.K = s.k;
        c.bias = c.act = c.noise = true;
        c.wino = wino;
        c.rgb = 1 + variant % 2;
        c.rgb_skip = (s.h % 2 == 0) && (s.w % 2 == 0) && variant < 2;
        c.threads = 1 + variant / 2;
        c.N = variant == 3 ? 2 : 1;
        c.blocking = variant == 2;
        SCOPED_TRACE(c.str());
        auto r = run_case(c, seed++);
        EXPECT_TRUE(r.ok) << r.msg();
      }
}

TEST(ModulatedConv, RejectsBadParams) {
  ModConvParams p;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
  float dummy[16] = {0};
  p.N = 1, p.C_in = 1, p.C_out = 1, p.H = 2, p.W = 2, p.K = 1, p.upsample = true;
  p.x = dummy, p.weight = dummy, p.styles = dummy, p.out = dummy;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
  // An RGB head: not on the upsampling conv, not beside the ToRGB skip, not without its weight, its
  // skip only on even sizes; without out and head nothing is written.
  p.rgb.out = dummy, p.rgb.w = dummy, p.rgb.bias = dummy;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
  p.upsample = false, p.skip = dummy;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
  p.skip = nullptr, p.rgb.w = nullptr;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
  p.rgb.w = dummy, p.H = 3, p.rgb.skip = dummy;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
  p.H = 2, p.rgb.skip = nullptr, p.rgb.out = nullptr, p.out = nullptr;
  EXPECT_THROW(modulated_conv2d_forward(p, SerialFor()), std::invalid_argument);
}
