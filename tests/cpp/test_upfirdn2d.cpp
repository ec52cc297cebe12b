// upfirdn2d and add_upsampled_skip vs the naive double-precision reference.
#include <cmath>
#include <string>
#include <vector>

#include "naive_ref.h"
#include "test_util.h"

using namespace anycost::cpu;

namespace {

struct FirCase {
  int64_t N, C, H, W;
  int up, down;
  int64_t px0, px1, py0, py1;
  int kernel;  // 0: [1,3,3,1] separable x4, 1: random non-separable 3x5, 2: 1D [1,3,3,1] row (1x4)
  bool strided;
  int threads;
};

testutil::CompareResult run_fir(const FirCase& c, uint32_t seed) {
  UpFirDn2dParams p;
  p.N = c.N, p.C = c.C, p.H = c.H, p.W = c.W;
  std::vector<float> xs;
  if (!c.strided) {
    xs = testutil::random_vec(c.N * c.C * c.H * c.W, seed);
    p.x = xs.data(), p.x_sn = c.C * c.H * c.W, p.x_sc = c.H * c.W, p.x_sh = c.W, p.x_sw = 1;
  } else {  // channels-last storage
    xs = testutil::random_vec(c.N * c.H * c.W * c.C, seed);
    p.x = xs.data(), p.x_sn = c.H * c.W * c.C, p.x_sc = 1, p.x_sh = c.W * c.C, p.x_sw = c.C;
  }
  std::vector<float> k;
  if (c.kernel == 0) {
    const float k1[4] = {1, 3, 3, 1};
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b) k.push_back(k1[a] * k1[b] / 64.f * 4.f);
    p.kh = p.kw = 4;
  } else if (c.kernel == 1) {
    k = testutil::random_vec(15, seed + 1);
    p.kh = 3, p.kw = 5;
  } else {
    k = {0.125f, 0.375f, 0.375f, 0.125f};
    p.kh = 1, p.kw = 4;
  }
  p.kernel = k.data(), p.k_sh = p.kw, p.k_sw = 1;
  p.up_x = p.up_y = c.up, p.down_x = p.down_y = c.down;
  p.pad_x0 = c.px0, p.pad_x1 = c.px1, p.pad_y0 = c.py0, p.pad_y1 = c.py1;
  const int64_t Ho = p.H_out(), Wo = p.W_out();
  std::vector<float> out(c.N * c.C * Ho * Wo, NAN);
  p.out = out.data(), p.o_sn = c.C * Ho * Wo, p.o_sc = Ho * Wo, p.o_sh = Wo, p.o_sw = 1;
  if (c.threads == 1)
    upfirdn2d(p, SerialFor());
  else
    upfirdn2d(p, ThreadedFor(c.threads));
  const auto ref = naive::upfirdn2d(p);
  if (ref.size() != out.size()) {
    testutil::CompareResult r;
    r.ok = false;
    return r;
  }
  return testutil::compare(ref, [&](size_t i) { return double(out[i]); });
}

}  // namespace

TEST(UpFirDn2d, Cases) {
  const FirCase cases[] = {
      // StyleGAN2 skip upsample: up 2, pad (2, 1)
      {1, 3, 4, 4, 2, 1, 2, 1, 2, 1, 0, false, 1},
      {2, 3, 13, 7, 2, 1, 2, 1, 2, 1, 0, true, 2},
      {1, 3, 64, 64, 2, 1, 2, 1, 2, 1, 0, false, 2},
      // blur after transposed conv: pad 1
      {1, 2, 9, 9, 1, 1, 1, 1, 1, 1, 0, false, 2},
      // downsample 2 (discriminator style): pad (1, 1)
      {1, 4, 8, 8, 1, 2, 1, 1, 1, 1, 0, false, 1},
      {3, 2, 13, 11, 1, 2, 1, 1, 1, 1, 0, true, 3},
      // negative pads (crop), non-separable kernel
      {1, 2, 12, 10, 1, 1, -2, 1, 0, -3, 1, false, 2},
      {2, 3, 9, 8, 2, 1, -1, -2, 3, -1, 1, true, 2},
      {1, 2, 15, 16, 2, 2, 1, 0, -1, 2, 1, false, 2},
      // 1D (1x4) kernel along x only
      {1, 2, 5, 9, 2, 1, 2, 1, 0, 0, 2, false, 1},
      {1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 0, false, 1},
      {1, 1, 40, 3, 1, 1, 2, 2, 2, 2, 1, false, 2},
  };
  uint32_t seed = 10;
  for (const auto& c : cases) {
    SCOPED_TRACE("N=" + std::to_string(c.N) + " C=" + std::to_string(c.C) + " H=" +
                 std::to_string(c.H) + " W=" + std::to_string(c.W) + " up=" +
                 std::to_string(c.up) + " down=" + std::to_string(c.down) + " k=" +
                 std::to_string(c.kernel));
    auto r = run_fir(c, seed++);
    EXPECT_TRUE(r.ok) << r.msg();
  }
}

TEST(UpFirDn2d, AddUpsampledSkip) {
  for (int64_t hw : {1, 2, 5, 8, 16}) {
    const int64_t N = 2, C = 3, H = hw, W = hw + 1;
    auto skip = testutil::random_vec(N * C * H * W, 77 + hw);
    auto base = testutil::random_vec(N * C * 4 * H * W, 99 + hw);
    std::vector<float> out = base;
    AddUpsampledSkipParams p;
    p.N = N, p.C = C, p.H = H, p.W = W;
    p.skip = skip.data(), p.s_sn = C * H * W, p.s_sc = H * W, p.s_sh = W, p.s_sw = 1;
    p.out = out.data(), p.o_sn = C * 4 * H * W, p.o_sc = 4 * H * W, p.o_sh = 2 * W, p.o_sw = 1;
    add_upsampled_skip(p, ThreadedFor(2));
    // Reference through naive upfirdn2d.
    UpFirDn2dParams q;
    q.N = N, q.C = C, q.H = H, q.W = W;
    q.x = skip.data(), q.x_sn = p.s_sn, q.x_sc = p.s_sc, q.x_sh = W, q.x_sw = 1;
    std::vector<float> k;
    const float k1[4] = {1, 3, 3, 1};
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b) k.push_back(k1[a] * k1[b] / 64.f * 4.f);
    q.kernel = k.data(), q.kh = q.kw = 4, q.k_sh = 4, q.k_sw = 1;
    q.up_x = q.up_y = 2, q.pad_x0 = q.pad_y0 = 2, q.pad_x1 = q.pad_y1 = 1;
    auto up = naive::upfirdn2d(q);
    for (size_t i = 0; i < up.size(); ++i) up[i] += base[i];
    auto r = testutil::compare(up, [&](size_t i) { return double(out[i]); });
    EXPECT_TRUE(r.ok) << "hw=" << hw << " " << r.msg();
  }
}

TEST(UpFirDn2d, RejectsBadParams) {
  UpFirDn2dParams p;
  EXPECT_THROW(upfirdn2d(p, SerialFor()), std::invalid_argument);
}
