// The instance norm of one contiguous plane, in place, as the image-to-image kernels fuse it after their conv
// (depthwise_conv3x3.h, pointwise_conv.h): (v - mean) / sqrt(biased variance + eps), optionally then a ReLU.
// Two passes over the plane while it is in cache; the sums are taken in double.
#pragma once

#include "isa.h"

#include <cmath>
#include <cstdint>

#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

namespace detail {

// step(acc, x) folded over the vectors of v[0 .. full) (full a multiple of kVecLen) into four independent
// accumulators, then summed: one chain of dependent adds ran at one vector per add latency, the norm's two
// passes then cost as much as the depthwise conv before them.
template <class Step>
ANYCOST_INLINE double fold_lanes(const float* v, int64_t full, Step step) {
  vfloat a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
  int64_t i = 0;
  for (; i + 4 * kVecLen <= full; i += 4 * kVecLen) {
    a0 = step(a0, vload(v + i));
    a1 = step(a1, vload(v + i + kVecLen));
    a2 = step(a2, vload(v + i + 2 * kVecLen));
    a3 = step(a3, vload(v + i + 3 * kVecLen));
  }
  for (; i < full; i += kVecLen) a0 = step(a0, vload(v + i));
  return vsum_lanes_f64(vadd(vadd(a0, a1), vadd(a2, a3)));
}

inline void instance_norm_plane(float* v, int64_t count, float eps, bool relu) {
  const int64_t full = count / kVecLen * kVecLen;
  double sum = fold_lanes(v, full, [](vfloat acc, vfloat x) { return vadd(acc, x); });
  for (int64_t i = full; i < count; ++i) sum += v[i];
  const float mean = static_cast<float>(sum / count);
  const vfloat vmean = vset1(mean), vneg = vset1(-1.f);
  double sq = fold_lanes(v, full, [&](vfloat acc, vfloat x) {
    const vfloat d = vfma(vmean, vneg, x);
    return vfma(d, d, acc);
  });
  for (int64_t i = full; i < count; ++i) sq += double(v[i] - mean) * double(v[i] - mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(sq / count + double(eps)));
  const vfloat vinv = vset1(inv), vshift = vset1(-mean * inv), slope = vzero();  // ReLU: leaky ReLU of slope 0
  for (int64_t i = 0; i < full; i += kVecLen) {
    const vfloat y = vfma(vload(v + i), vinv, vshift);
    vstore(v + i, relu ? vlrelu(y, slope) : y);
  }
  for (int64_t i = full; i < count; ++i) {
    const float y = (v[i] - mean) * inv;
    v[i] = relu && !(y > 0.f) ? 0.f : y;
  }
}

}  // namespace detail

// The norm (and ReLU) of `planes` contiguous planes of `count` values from `v` on, one task per plane: the pass
// after a conv whose tasks are not whole planes (small_conv.h, small_conv_transpose.h).
template <class ParallelFor>
void instance_norm_planes(float* v, int64_t planes, int64_t count, float eps, bool relu, const ParallelFor& pf) {
  pf(0, planes, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) detail::instance_norm_plane(v + t * count, count, eps, relu);
  });
}

ANYCOST_CPU_NAMESPACE_END
