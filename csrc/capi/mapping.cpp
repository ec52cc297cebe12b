// The linear layers (mapping network and style modulations) and the mapping z -> w, as
// EqualLinear / PixelNorm / Generator.mapping in anycost/models/stylegan2: the kernels have no dense
// layer, so the matrix-vector products live here; the bias + leaky ReLU is the bias_act kernel.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model.h"

namespace anycost {
namespace capi {

namespace {

// sum_i a[i] * b[i]. `omp simd` lets the compiler vectorise the reduction without -ffast-math
// (the build adds -fopenmp or -fopenmp-simd); the order differs from BLAS only by rounding.
float dot(const float* a, const float* b, int n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

struct LinearTask {
  const Linear* L;
  const float* x;
  int n;
  int out;  // row stride of y
  float* y;
};

// Outputs [o0, o1) of every row: y[r, o] = scale * <W[o], x[r]> + bias[o].
void linear_range(void* ctx, int64_t o0, int64_t o1) {
  const LinearTask& t = *static_cast<const LinearTask*>(ctx);
  const Linear& L = *t.L;
  for (int r = 0; r < t.n; ++r) {
    const float* xr = t.x + int64_t(r) * L.in;
    float* yr = t.y + int64_t(r) * t.out;
    for (int64_t o = o0; o < o1; ++o) {
      const float v = L.scale * dot(L.weight + o * L.in, xr, L.in);
      yr[o] = L.bias ? v + L.bias[o] : v;
    }
  }
}

}  // namespace

void linear(const Linear& L, int out, const float* x, int n, float* y, const Exec& ex) {
  LinearTask task{&L, x, n, out, y};
  // About 32k multiply-adds per task at least: below that a thread costs more than it saves.
  const int64_t grain = std::max<int64_t>(8, 32768 / (int64_t(L.in) * n + 1));
  ex.pf.run(ex.pf.ctx, 0, out, grain, &linear_range, &task);
}

void mapping(const Model& m, const float* z, int n, float* w, const Exec& ex) {
  const int sd = m.arch.style_dim;
  std::vector<float> a(size_t(n) * sd), b(size_t(n) * sd);
  for (int r = 0; r < n; ++r) {  // PixelNorm: x * rsqrt(mean(x^2) + 1e-8)
    const float* zr = z + int64_t(r) * sd;
    const float scale = 1.f / std::sqrt(dot(zr, zr, sd) / float(sd) + 1e-8f);
    for (int i = 0; i < sd; ++i) a[size_t(r) * sd + i] = zr[i] * scale;
  }
  for (size_t k = 0; k < m.mapping.size(); ++k) {
    Linear no_bias = m.mapping[k];
    no_bias.bias = nullptr;  // added by bias_act with the activation, as Python does
    const bool last = k + 1 == m.mapping.size();
    float* out = last ? w : b.data();
    linear(no_bias, sd, a.data(), n, out, ex);
    cpu::BiasActParams p;
    p.N = n, p.C = sd, p.S = 1;
    p.x = out, p.x_sn = sd, p.x_sc = 1, p.x_ss = 1;
    p.out = out, p.o_sn = sd, p.o_sc = 1, p.o_ss = 1;
    p.bias = m.mapping[k].bias, p.bias_s = 1;
    p.act = cpu::Activation::LRelu;
    p.alpha = 0.2f;
    p.gain = static_cast<float>(std::sqrt(2.0));
    ex.kernels.bias_act(p, ex.pf);
    if (!last) a.swap(b);
  }
}

}  // namespace capi
}  // namespace anycost
