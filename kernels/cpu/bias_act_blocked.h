// Fused bias + activation, torch-free CPU path.
//
//   out[n, c, s] = act(x[n, c, s] + bias[c]) * gain
//   act = linear (identity) | lrelu (v > 0 ? v : alpha * v)
//
// x is viewed as [N, C, S] (S = flattened spatial size, 1 for a linear
// layer's [N, C] output) with arbitrary strides; out may be x itself
// (in place) or another tensor. Vectorised along S when it is contiguous,
// along C when S == 1 and C is contiguous; scalar otherwise.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "modconv_epilogue.h"
#include "op_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN


namespace detail {

ANYCOST_INLINE vfloat bias_act_vec(vfloat v, vfloat b, bool lrelu, vfloat alpha, vfloat gain) {
  v = vadd(v, b);
  if (lrelu) v = vlrelu(v, alpha);
  return vmul(v, gain);
}
ANYCOST_INLINE float bias_act_scalar(float v, float b, bool lrelu, float alpha, float gain) {
  v += b;
  if (lrelu) v = slrelu(v, alpha);
  return v * gain;
}

}  // namespace detail

template <class ParallelFor>
void bias_act(const BiasActParams& p, const ParallelFor& pf) {
  if (!p.x || !p.out || p.N < 0 || p.C < 0 || p.S < 0)
    throw std::invalid_argument("bias_act: bad arguments");
  if (p.N == 0 || p.C == 0 || p.S == 0) return;
  const bool lrelu = p.act == Activation::LRelu;
  const vfloat va = vset1(p.alpha), vg = vset1(p.gain);
  auto bias_of = [&](int64_t c) { return p.bias ? p.bias[c * p.bias_s] : 0.f; };

  if (p.S == 1 && p.x_sc == 1 && p.o_sc == 1) {
    // [N, C] rows, vectorised along C.
    pf(0, p.N, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* xr = p.x + n * p.x_sn;
        float* orow = p.out + n * p.o_sn;
        int64_t c = 0;
        for (; c + kVecLen <= p.C; c += kVecLen) {
          vfloat b = vzero();
          if (p.bias) b = p.bias_s == 1 ? vload(p.bias + c)
                                         : vload_strided(p.bias + c * p.bias_s, p.bias_s, kVecLen);
          vstore(orow + c, detail::bias_act_vec(vload(xr + c), b, lrelu, va, vg));
        }
        for (; c < p.C; ++c)
          orow[c] = detail::bias_act_scalar(xr[c], bias_of(c), lrelu, p.alpha, p.gain);
      }
    });
    return;
  }

  // Planes (n, c), split into spans of the spatial dimension for balance.
  constexpr int64_t span = 16384;
  const int64_t spans = (p.S + span - 1) / span;
  pf(0, p.N * p.C * spans, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t plane = t / spans, sp = t % spans;
      const int64_t n = plane / p.C, c = plane % p.C;
      const float* xr = p.x + n * p.x_sn + c * p.x_sc;
      float* orow = p.out + n * p.o_sn + c * p.o_sc;
      const float b = bias_of(c);
      const int64_t s0 = sp * span, s1 = std::min(p.S, s0 + span);
      if (p.x_ss == 1 && p.o_ss == 1) {
        const vfloat vb = vset1(b);
        int64_t s = s0;
        for (; s + kVecLen <= s1; s += kVecLen)
          vstore(orow + s, detail::bias_act_vec(vload(xr + s), vb, lrelu, va, vg));
        for (; s < s1; ++s) orow[s] = detail::bias_act_scalar(xr[s], b, lrelu, p.alpha, p.gain);
      } else {
        for (int64_t s = s0; s < s1; ++s)
          orow[s * p.o_ss] = detail::bias_act_scalar(xr[s * p.x_ss], b, lrelu, p.alpha, p.gain);
      }
    }
  });
}

ANYCOST_CPU_NAMESPACE_END
