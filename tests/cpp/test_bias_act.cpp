// bias_act vs the naive reference.
#include <cmath>
#include <vector>

#include "naive_ref.h"
#include "test_util.h"

using namespace anycost::cpu;

namespace {

void run_bias_act(int64_t N, int64_t C, int64_t S, bool bias, bool lrelu, int layout,
                  bool in_place, int threads, uint32_t seed) {
  BiasActParams p;
  p.N = N, p.C = C, p.S = S;
  std::vector<float> xs;
  if (layout == 0) {  // contiguous [N, C, S]
    xs = testutil::random_vec(N * C * S, seed);
    p.x_sn = C * S, p.x_sc = S, p.x_ss = 1;
  } else {  // channels-last [N, S, C]
    xs = testutil::random_vec(N * C * S, seed);
    p.x_sn = C * S, p.x_sc = 1, p.x_ss = C;
  }
  p.x = xs.data();
  std::vector<float> b = testutil::random_vec(C, seed + 1);
  if (bias) p.bias = b.data(), p.bias_s = 1;
  if (lrelu) p.act = Activation::LRelu, p.alpha = 0.2f, p.gain = std::sqrt(2.f);
  else p.gain = 0.5f;
  const auto ref = naive::bias_act(p);  // before a possible in-place overwrite
  std::vector<float> out;
  if (in_place) {
    p.out = xs.data(), p.o_sn = p.x_sn, p.o_sc = p.x_sc, p.o_ss = p.x_ss;
  } else {
    out.assign(N * C * S, NAN);
    p.out = out.data(), p.o_sn = C * S, p.o_sc = S, p.o_ss = 1;
  }
  if (threads == 1) bias_act(p, SerialFor());
  else bias_act(p, ThreadedFor(threads));
  auto r = testutil::compare(ref, [&](size_t k) {
    const int64_t s = k % S, c = (k / S) % C, n = k / (S * C);
    return double(p.out[n * p.o_sn + c * p.o_sc + s * p.o_ss]);
  }, 1e-6);
  EXPECT_TRUE(r.ok) << "N=" << N << " C=" << C << " S=" << S << " bias=" << bias
                    << " lrelu=" << lrelu << " layout=" << layout << " inplace=" << in_place
                    << " " << r.msg();
}

}  // namespace

TEST(BiasAct, AllPaths) {
  uint32_t seed = 5;
  for (int64_t S : {1, 7, 64, 20000})
    for (int64_t C : {1, 13, 512})
      for (int layout = 0; layout < 2; ++layout)
        for (int v = 0; v < 4; ++v) {
          if (S * C > 200000 && v > 1) continue;
          run_bias_act(S == 1 ? 3 : 2, C, S, v != 1, v >= 2 || v == 0, layout, v == 3,
                       1 + v % 2, seed++);
        }
}
