// The int8 styled conv (qconv_blocked.h) at the level this executable is compiled for, against a
// naive reference: the activations quantised by the contract of QConvParams, a textbook int64
// convolution (or stride-2 transposed convolution) of the unpacked int8 weights, the upsampling blur
// (naive_ref.h), then the epilogue in double. With out_scale 1 and no noise, bias or activation the
// plain conv's output is the accumulator itself, compared exactly (the upsampling conv's is blurred
// in fp32, compared to fp32 rounding).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../kernels/cpu/qconv_blocked.h"
#include "naive_ref.h"
#include "test_util.h"

using namespace anycost::cpu;

namespace {

// The int8 value of one activation by the contract of QConvParams (float32 arithmetic).
int quantize_ref(float x, float mult) {
  const float v = x * mult;
  if (!(v > -127.f)) return -127;
  if (v > 127.f) return 127;
  return static_cast<int>(std::nearbyint(v));
}

std::vector<int8_t> random_weights(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<int8_t> v(n);
  for (auto& w : v) w = static_cast<int8_t>(d(g));
  return v;
}

struct Case {
  int64_t N = 1, C_in = 7, C_out = 5, H = 5, W = 6;
  int K = 3;
  bool up = false;
  bool epilogue = true;       // false: out_scale 1, no noise / bias / activation (exact accumulators)
  bool noise_bcast = false;
  int x_layout = 0;           // 0 contiguous, 1 channels-last, 2 strided + padded storage
  bool out_strided = false;
  bool tiny_blocks = false;   // several channel blocks, input blocks and chunks
  int threads = 1;
  std::string str() const {
    std::ostringstream os;
    os << "N=" << N << " Cin=" << C_in << " Cout=" << C_out << " H=" << H << " W=" << W << " K=" << K << " up=" << up
       << " epilogue=" << epilogue << " bcast=" << noise_bcast << " xlayout=" << x_layout
       << " ostrided=" << out_strided << " tiny=" << tiny_blocks << " threads=" << threads;
    return os.str();
  }
};

struct Result {
  bool ok = true;
  std::string msg;
};

// Runs one case through qconv2d_forward and the reference.
Result run_case(const Case& c, uint32_t seed) {
  const int64_t N = c.N, C = c.C_in, H = c.H, W = c.W, K = c.K, T = K * K;
  // Full weight [C_out + 3, C_in + 5, K, K]; the kernel sees the slice [2:2+C_out, 3:3+C_in].
  const int64_t Cf_out = c.C_out + 3, Cf_in = C + 5;
  const std::vector<int8_t> wfull = random_weights(Cf_out * Cf_in * T, seed);
  QConvPackParams pp;
  pp.C_out = c.C_out, pp.C_in = C, pp.K = c.K;
  pp.w_so = Cf_in * T, pp.w_si = T, pp.w_sh = K, pp.w_sw = 1;
  pp.weight = wfull.data() + 2 * pp.w_so + 3 * pp.w_si;
  std::vector<int8_t> packed(qconv_packed_bytes(c.C_out, C, c.K), 99);
  std::vector<int32_t> wsum(c.C_out * T);
  pp.packed = packed.data(), pp.wsum = wsum.data();
  detail::qconv_pack_weights(pp);

  QConvParams p;
  p.N = N, p.C_in = C, p.C_out = c.C_out, p.H = H, p.W = W, p.K = c.K, p.upsample = c.up;
  const int64_t Ho = p.H_out(), Wo = p.W_out();
  std::vector<float> xs;
  if (c.x_layout == 0) {
    xs = testutil::random_vec(N * C * H * W, seed + 1, -3.f, 3.f);
    p.x = xs.data(), p.x_sn = C * H * W, p.x_sc = H * W, p.x_sh = W, p.x_sw = 1;
  } else if (c.x_layout == 1) {
    xs = testutil::random_vec(N * H * W * C, seed + 1, -3.f, 3.f);
    p.x = xs.data(), p.x_sn = H * W * C, p.x_sc = 1, p.x_sh = W * C, p.x_sw = C;
  } else {
    const int64_t sw = 2, sh = 2 * W + 5, sc = (H + 3) * sh, sn = (C + 2) * sc;
    xs = testutil::random_vec(N * sn, seed + 1, -3.f, 3.f);
    p.x = xs.data() + sc + sh + 1, p.x_sn = sn, p.x_sc = sc, p.x_sh = sh, p.x_sw = sw;
  }
  // Styles [N, C] stored transposed (strided); some large enough to clamp.
  std::vector<float> styles = testutil::random_vec(N * C, seed + 2, -40.f, 40.f);
  p.styles = styles.data(), p.s_sn = 1, p.s_sc = N;
  p.act_scale = 0.37f;
  p.packed = packed.data(), p.wsum = wsum.data();
  std::vector<float> out_scale(N * c.C_out, 1.f), noise, bias;
  if (c.epilogue) {
    out_scale = testutil::random_vec(N * c.C_out, seed + 3, 1e-4f, 1e-3f);
    noise = testutil::random_vec((c.noise_bcast ? 1 : N) * Ho * Wo, seed + 4);
    p.noise = noise.data(), p.noise_sn = c.noise_bcast ? 0 : Ho * Wo, p.noise_sh = Wo, p.noise_sw = 1;
    p.noise_strength = 0.3f;
    bias = testutil::random_vec(2 * c.C_out, seed + 5);
    p.bias = bias.data(), p.bias_s = 2;
    p.act = Activation::LRelu, p.act_alpha = 0.2f, p.act_gain = std::sqrt(2.f);
  }
  p.out_scale = out_scale.data(), p.os_sn = c.C_out, p.os_sc = 1;
  const int64_t osh = c.out_strided ? Wo + 3 : Wo;
  std::vector<float> out(N * c.C_out * Ho * osh, NAN);
  p.out = out.data(), p.o_sn = c.C_out * Ho * osh, p.o_sc = Ho * osh, p.o_sh = osh, p.o_sw = 1;
  std::vector<float> peak(N * c.C_out, 0.f);
  p.out_peak = peak.data();

  QConvBlocking b;
  if (c.tiny_blocks) b.mc = 8, b.kc = 4, b.acc_bytes = b.up_acc_bytes = 1;
  b.num_threads = c.threads;
  if (c.threads == 1)
    qconv2d_forward(p, SerialFor(), b);
  else
    qconv2d_forward(p, ThreadedFor(c.threads), b);

  Result r;
  r.msg = testutil::check_peaks(peak, out.data(), N, c.C_out, Ho, Wo, p.o_sn, p.o_sc, p.o_sh);
  r.ok = r.msg.empty();

  // Reference.
  const float inv = 1.f / p.act_scale;
  std::vector<int> q(N * C * H * W);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < C; ++i) {
      const float mult = styles[n * p.s_sn + i * p.s_sc] * inv;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          q[((n * C + i) * H + y) * W + x] = quantize_ref(p.x[n * p.x_sn + i * p.x_sc + y * p.x_sh + x * p.x_sw], mult);
    }
  const std::vector<double> blur = naive::blur_kernel_up();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < c.C_out; ++o) {
      auto w_at = [&](int64_t i, int64_t ky, int64_t kx) {
        return int64_t(pp.weight[o * pp.w_so + i * pp.w_si + ky * pp.w_sh + kx]);
      };
      auto q_at = [&](int64_t i, int64_t y, int64_t x) { return int64_t(q[((n * C + i) * H + y) * W + x]); };
      naive::Plane acc(H, W);
      if (!c.up) {
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            int64_t s = 0;
            for (int64_t i = 0; i < C; ++i)
              for (int64_t ky = 0; ky < K; ++ky)
                for (int64_t kx = 0; kx < K; ++kx) {
                  const int64_t yy = y + ky - K / 2, xx = x + kx - K / 2;
                  if (yy >= 0 && yy < H && xx >= 0 && xx < W) s += w_at(i, ky, kx) * q_at(i, yy, xx);
                }
            acc.at(y, x) = double(s);
          }
      } else {
        std::vector<int64_t> t((2 * H + 1) * (2 * W + 1), 0);  // conv_transpose2d, stride 2, in integers
        for (int64_t i = 0; i < C; ++i)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
              for (int64_t ky = 0; ky < 3; ++ky)
                for (int64_t kx = 0; kx < 3; ++kx)
                  t[(2 * y + ky) * (2 * W + 1) + 2 * x + kx] += w_at(i, ky, kx) * q_at(i, y, x);
        naive::Plane tt(2 * H + 1, 2 * W + 1);
        for (size_t k = 0; k < t.size(); ++k) tt.v[k] = double(t[k]);
        acc = naive::upfirdn2d_plane(tt, blur, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1);
      }
      for (int64_t y = 0; y < Ho; ++y)
        for (int64_t x = 0; x < Wo; ++x) {
          const float got = out[n * p.o_sn + o * p.o_sc + y * p.o_sh + x];
          double want = acc.at(y, x), tol = 0;
          if (c.epilogue) {
            want = double(out_scale[n * c.C_out + o]) * want +
                   0.3 * noise[(c.noise_bcast ? 0 : n) * Ho * Wo + y * Wo + x] + bias[2 * o];
            want = (want > 0 ? want : 0.2 * want) * std::sqrt(2.0);
            tol = 1e-5 * (std::fabs(want) + 1.0);
          } else if (c.up) {
            tol = 1e-6 * (std::fabs(want) + 1e4);  // the blur of the exact integers, in fp32
          }
          if (!(std::fabs(got - want) <= tol) && r.ok) {
            r.ok = false;
            r.msg = "mismatch at n=" + std::to_string(n) + " o=" + std::to_string(o) + " y=" + std::to_string(y) +
                    " x=" + std::to_string(x) + ": got " + std::to_string(got) + " want " + std::to_string(want);
          }
        }
    }
  return r;
}

}  // namespace

TEST(QConv, ExactAccumulators) {
  // Odd channel counts (not multiples of 4, 8 or 16), odd sizes, both kernel sizes, batch > 1, the
  // blocked variants (several channel / input blocks and chunks) and threads.
  const int64_t sizes[][2] = {{1, 1}, {2, 3}, {5, 5}, {7, 13}, {16, 9}, {19, 4}};
  const int64_t channels[][2] = {{1, 1}, {3, 9}, {5, 17}, {17, 8}, {33, 13}};
  uint32_t seed = 1;
  int count = 0;
  for (const auto& hw : sizes)
    for (const auto& ch : channels)
      for (int K : {1, 3})
        for (int variant = 0; variant < 2; ++variant) {
          Case c;
          c.H = hw[0], c.W = hw[1], c.C_in = ch[0], c.C_out = ch[1], c.K = K;
          c.N = 1 + variant * 2;
          c.epilogue = false;
          c.tiny_blocks = variant == 1;
          c.x_layout = (count % 3);
          c.threads = 1 + count % 3;
          SCOPED_TRACE(c.str());
          const Result r = run_case(c, seed++);
          EXPECT_TRUE(r.ok) << r.msg;
          ++count;
        }
  EXPECT_EQ(count, 6 * 5 * 2 * 2);
}

TEST(QConv, EpilogueLayoutsAndStrides) {
  uint32_t seed = 500;
  int count = 0;
  for (int64_t hw : {3, 8, 21})
    for (int K : {1, 3})
      for (int variant = 0; variant < 4; ++variant) {
        Case c;
        c.H = hw, c.W = hw + variant, c.K = K;
        c.N = variant % 2 ? 2 : 1;
        c.C_in = 6 + 5 * variant, c.C_out = 11 + variant;
        c.noise_bcast = variant == 2;
        c.x_layout = variant % 3;
        c.out_strided = variant >= 2;
        c.tiny_blocks = variant == 3;
        c.threads = 1 + variant % 2;
        SCOPED_TRACE(c.str());
        const Result r = run_case(c, seed++);
        EXPECT_TRUE(r.ok) << r.msg;
        ++count;
      }
  EXPECT_EQ(count, 3 * 2 * 4);
}

TEST(QConv, Upsampling) {
  // 2x upsampling (3x3 only): odd sizes and channel counts, batch > 1, chunks carried within a band
  // (tiny blocks), bands split over threads, the full epilogue and the raw (blurred) accumulators.
  const int64_t sizes[][2] = {{1, 1}, {2, 5}, {5, 3}, {9, 9}, {13, 6}};
  uint32_t seed = 700;
  int count = 0;
  for (const auto& hw : sizes)
    for (int variant = 0; variant < 4; ++variant) {
      Case c;
      c.up = true;
      c.H = hw[0], c.W = hw[1];
      c.C_in = 3 + 6 * variant, c.C_out = 5 + 4 * variant;
      c.N = variant % 2 ? 2 : 1;
      c.epilogue = variant >= 2;
      c.noise_bcast = variant == 3;
      c.x_layout = variant % 3;
      c.out_strided = variant == 1;
      c.tiny_blocks = variant % 2 == 0;
      c.threads = 1 + count % 3;
      SCOPED_TRACE(c.str());
      const Result r = run_case(c, seed++);
      EXPECT_TRUE(r.ok) << r.msg;
      ++count;
    }
  EXPECT_EQ(count, 5 * 4);
}

TEST(QConv, GeneratorSizedLayer) {
  // Enough channels for full micro-tiles and several strips per row, at the default blocking.
  Case c;
  c.N = 2, c.C_in = 64, c.C_out = 48, c.H = 16, c.W = 16, c.threads = 2;
  const Result r = run_case(c, 900);
  EXPECT_TRUE(r.ok) << r.msg;
  c.epilogue = false, c.C_in = 130, c.C_out = 24, c.H = c.W = 11;
  const Result e = run_case(c, 901);
  EXPECT_TRUE(e.ok) << e.msg;
  c.epilogue = true, c.up = true, c.C_in = 40, c.C_out = 32, c.H = 12, c.W = 20;
  const Result u = run_case(c, 902);
  EXPECT_TRUE(u.ok) << u.msg;
}

TEST(QConv, KnownInputPeaksGiveTheDynamicScales) {
  // dynamic_scale with x_peak (max |x| per channel, as the conv before would track it) must give the output of
  // the pass over x bit for bit; a different x_peak must change it (so the kernel reads it).
  for (bool up : {false, true}) {
    const int64_t N = 2, C = 13, C_out = 10, H = 9, W = 11, T = 9;
    const std::vector<int8_t> w = random_weights(C_out * C * T, 31);
    QConvPackParams pp;
    pp.C_out = C_out, pp.C_in = C, pp.K = 3, pp.weight = w.data(), pp.w_so = C * T, pp.w_si = T, pp.w_sh = 3;
    std::vector<int8_t> packed(qconv_packed_bytes(C_out, C, 3));
    std::vector<int32_t> wsum(C_out * T);
    pp.packed = packed.data(), pp.wsum = wsum.data();
    detail::qconv_pack_weights(pp);
    const std::vector<float> x = testutil::random_vec(N * C * H * W, 32, -3.f, 3.f);
    const std::vector<float> styles = testutil::random_vec(N * C, 33, -2.f, 2.f);
    const std::vector<float> out_scale = testutil::random_vec(N * C_out, 34, 1e-4f, 1e-3f);
    QConvParams p;
    p.N = N, p.C_in = C, p.C_out = C_out, p.H = H, p.W = W, p.upsample = up;
    p.x = x.data(), p.x_sn = C * H * W, p.x_sc = H * W, p.x_sh = W;
    p.styles = styles.data(), p.s_sn = C;
    p.dynamic_scale = true;
    p.packed = packed.data(), p.wsum = wsum.data();
    p.out_scale = out_scale.data(), p.os_sn = C_out;
    p.act = Activation::LRelu;
    const int64_t Ho = p.H_out(), Wo = p.W_out();
    p.o_sn = C_out * Ho * Wo, p.o_sc = Ho * Wo, p.o_sh = Wo;
    auto run = [&](const float* x_peak) {
      std::vector<float> out(N * C_out * Ho * Wo, NAN);
      QConvParams q = p;
      q.out = out.data(), q.x_peak = x_peak;
      QConvBlocking b;
      b.num_threads = 2;
      qconv2d_forward(q, ThreadedFor(2), b);
      return out;
    };
    std::vector<float> x_peak(N * C, 0.f);
    for (int64_t k = 0; k < N * C; ++k)
      for (int64_t j = 0; j < H * W; ++j) x_peak[k] = std::max(x_peak[k], std::fabs(x[k * H * W + j]));
    const std::vector<float> scanned = run(nullptr), known = run(x_peak.data());
    EXPECT_EQ(std::memcmp(scanned.data(), known.data(), sizeof(float) * scanned.size()), 0) << "up=" << up;
    for (float& v : x_peak) v *= 2.f;
    const std::vector<float> other = run(x_peak.data());
    EXPECT_TRUE(std::memcmp(scanned.data(), other.data(), sizeof(float) * scanned.size()) != 0) << "up=" << up;
  }
}

TEST(QConv, QuantizeRoundsHalfToEvenAndClamps) {
  // One group of 3 channels (the 4th is missing), one row; x * mult hits ties, the clamp and NaN.
  const float xs[3][5] = {{2.5f, 3.5f, -2.5f, 200.f, -200.f},
                          {0.5f, -0.5f, 126.5f, -127.6f, 1.49999988f},
                          {std::numeric_limits<float>::quiet_NaN(), 0.f, -0.f, 127.4f, -1.5f}};
  QConvParams p;
  p.N = 1, p.C_in = 3, p.H = 1, p.W = 5;
  p.x = &xs[0][0], p.x_sc = 5, p.x_sh = 5;
  const int64_t words = 64;
  std::vector<uint32_t> plane(words, 0xDEADBEEF);
  detail::quantize_plane(plane.data(), words, p, 1.f, 0, 0);
  const int want[3][5] = {{2, 4, -2, 127, -127}, {0, 0, 126, -127, 1}, {-127, 0, 0, 127, -2}};
  const uint32_t zero = uint32_t(kQActZero) * 0x01010101u;
  for (int64_t k = 0; k < words; ++k) {
    if (k >= 7 && k < 12) continue;  // image row 0 = grid row 1, columns 1..5 (Wp = 6)
    EXPECT_EQ(plane[k], zero) << "padding word " << k;
  }
  for (int x = 0; x < 5; ++x)
    for (int c = 0; c < 4; ++c) {
      const int byte = (plane[7 + x] >> (8 * c)) & 0xFF;
      const int value = c < 3 ? want[c][x] : 0;
      EXPECT_EQ(byte, (value + kQActZero) & 0xFF) << "x=" << x << " channel " << c;
    }
}

TEST(QConv, PackLayoutAndErrors) {
  const int64_t C_out = 9, C_in = 5;
  const std::vector<int8_t> w = random_weights(C_out * C_in * 9, 77);
  QConvPackParams pp;
  pp.C_out = C_out, pp.C_in = C_in, pp.K = 3, pp.weight = w.data();
  pp.w_so = C_in * 9, pp.w_si = 9, pp.w_sh = 3;
  std::vector<int8_t> packed(qconv_packed_bytes(C_out, C_in, 3), 99);
  std::vector<int32_t> wsum(C_out * 9);
  pp.packed = packed.data(), pp.wsum = wsum.data();
  detail::qconv_pack_weights(pp);
  EXPECT_EQ(packed.size(), size_t(16 * 8 * 9));
  for (int64_t o = 0; o < 16; ++o)
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t t = 0; t < 9; ++t) {
        const int8_t got = packed[(((o / 8) * 2 + i / 4) * 9 + t) * 32 + (o % 8) * 4 + i % 4];
        const int8_t want = o < C_out && i < C_in ? w[o * C_in * 9 + i * 9 + t] : 0;
        EXPECT_EQ(int(got), int(want)) << "o=" << o << " i=" << i << " t=" << t;
      }
  for (int64_t o = 0; o < C_out; ++o)
    for (int64_t t = 0; t < 9; ++t) {
      int32_t s = 0;
      for (int64_t i = 0; i < C_in; ++i) s += w[(o * C_in + i) * 9 + t];
      EXPECT_EQ(wsum[o * 9 + t], s);
    }
  std::vector<int8_t> bad = w;
  bad[4 * C_in * 9 + 2 * 9 + 5] = -128;
  pp.weight = bad.data();
  EXPECT_THROW(detail::qconv_pack_weights(pp), std::invalid_argument);
  QConvParams p;
  EXPECT_THROW(qconv2d_forward(p, SerialFor()), std::invalid_argument);
}
