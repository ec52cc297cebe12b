// The instance norm of the image-to-image kernels' output planes, in place, fused after their conv
// (depthwise_conv3x3.h, pointwise_conv.h, small_conv.h, small_conv_transpose.h): (v - mean) / sqrt(biased
// variance + eps), optionally then a ReLU and a residual add. Two passes over a plane (or a band of its rows) while
// it is in cache for its moments, one more to apply them; the lane sums are taken in double.
#pragma once

#include "isa.h"

#include <cmath>
#include <cstdint>

#include "parallel.h"
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

// Count, mean and sum of squared deviations (from the mean rounded to float, as the norm subtracts it) of a span of
// a plane: the whole plane, or one band of its rows, merged with the other bands' by merge_moments.
struct NormMoments {
  double count = 0, mean = 0, m2 = 0;
};

inline NormMoments norm_moments(const float* v, int64_t count) {
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
  return {double(count), sum / count, sq};
}

// The moments of two disjoint spans together (Chan, Golub and LeVeque's pairwise update).
inline NormMoments merge_moments(const NormMoments& a, const NormMoments& b) {
  const double n = a.count + b.count, d = b.mean - a.mean;
  return {n, a.mean + d * (b.count / n), a.m2 + b.m2 + d * d * (a.count * b.count / n)};
}

// v[0 .. count) = relu?((v - mean) / sqrt(biased variance + eps)) [+ residual], with the plane's moments m.
inline void norm_apply(float* v, int64_t count, const NormMoments& m, float eps, bool relu, const float* residual) {
  const int64_t full = count / kVecLen * kVecLen;
  const float mean = static_cast<float>(m.mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(m.m2 / m.count + double(eps)));
  const vfloat vinv = vset1(inv), vshift = vset1(-mean * inv), slope = vzero();  // ReLU: leaky ReLU of slope 0
  // The tail in a masked vector, so that every value gets the same operations (a scalar tail's product and residual
  // add were contracted into an FMA: not the float that the norm and a separate add give).
  auto apply = [&](int64_t i, int lanes) {
    vfloat y = vfma(lanes == kVecLen ? vload(v + i) : vload_n(v + i, lanes), vinv, vshift);
    if (relu) y = vlrelu(y, slope);
    if (residual) y = vadd(y, lanes == kVecLen ? vload(residual + i) : vload_n(residual + i, lanes));
    if (lanes == kVecLen)
      vstore(v + i, y);
    else
      vstore_n(v + i, y, lanes);
  };
  for (int64_t i = 0; i < full; i += kVecLen) apply(i, kVecLen);
  if (full < count) apply(full, static_cast<int>(count - full));
}

inline void instance_norm_plane(float* v, int64_t count, float eps, bool relu, const float* residual = nullptr) {
  norm_apply(v, count, norm_moments(v, count), eps, relu, residual);
}

// v[0 .. count) += residual[0 .. count).
inline void add_residual(float* v, const float* residual, int64_t count) {
  const int64_t full = count / kVecLen * kVecLen;
  for (int64_t i = 0; i < full; i += kVecLen) vstore(v + i, vadd(vload(v + i), vload(residual + i)));
  for (int64_t i = full; i < count; ++i) v[i] += residual[i];
}

}  // namespace detail

// The epilogue of an image-to-image conv whose output `out` ([planes][rows][row_len] contiguous) its tasks write in
// bands of rows (parallel.h, i2i_bands): the instance norm of each plane (then a ReLU, unless the conv applied it
// without a norm) and an optional residual of the output's shape added last. With one band a task normalizes its
// planes while they are in cache; with more, it keeps its band's moments (in the calling thread's kCallSlot
// scratch), and `finish` merges each plane's and normalizes every band in a second pass, band-major again.
struct BandedNorm {
  float* out;
  int64_t rows, row_len, bands;
  bool normalize, relu;
  float eps;
  const float* residual;  // optional
  int64_t planes;
  // [bands][planes], with more than one band: each band's in its own run of cache lines (interleaved, both threads
  // would write every line)
  detail::NormMoments* moments = nullptr;

  BandedNorm(float* out_, int64_t planes_, int64_t rows_, int64_t row_len_, int64_t bands_, bool normalize_,
             bool relu_, float eps_, const float* residual_)
      : out(out_), rows(rows_), row_len(row_len_), bands(bands_), normalize(normalize_), relu(relu_), eps(eps_),
        residual(residual_), planes(planes_) {
    if (normalize && bands > 1)
      moments = static_cast<detail::NormMoments*>(
          thread_workspace(sizeof(detail::NormMoments) * planes * bands, kCallSlot));
  }

  // Offset and length of band b of plane q.
  int64_t offset(int64_t q, int64_t b) const { return (q * rows + detail::row_band(b, bands, rows).r0) * row_len; }
  int64_t length(int64_t b) const {
    const detail::RowBand r = detail::row_band(b, bands, rows);
    return (r.r1 - r.r0) * row_len;
  }

  // A task has written band b of plane q.
  void band_done(int64_t q, int64_t b) const {
    const int64_t off = offset(q, b), n = length(b);
    const float* res = residual ? residual + off : nullptr;
    if (!normalize) {
      if (res) detail::add_residual(out + off, res, n);
    } else if (bands == 1) {
      detail::instance_norm_plane(out + off, n, eps, relu, res);
    } else {
      moments[b * planes + q] = detail::norm_moments(out + off, n);
    }
  }

  // After every band of every plane is done.
  template <class ParallelFor>
  void finish(const ParallelFor& pf) const {
    if (!normalize || bands == 1) return;
    pf(0, bands * planes, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / planes, q = t % planes;
        detail::NormMoments all = moments[q];
        for (int64_t k = 1; k < bands; ++k) all = detail::merge_moments(all, moments[k * planes + q]);
        const int64_t off = offset(q, b);
        detail::norm_apply(out + off, length(b), all, eps, relu, residual ? residual + off : nullptr);
      }
    });
  }
};

ANYCOST_CPU_NAMESPACE_END
