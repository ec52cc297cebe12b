// Pointwise (1x1) conv + bias, optionally followed by an instance norm of each output plane and a ReLU,
// torch-free CPU path: the second half of the image-to-image students' separable convs, with the norm (and
// ReLU) their residual blocks apply to it (anycost/models/i2i/layers.py). At those sizes (8-64 channels,
// 8-64 px planes) oneDNN's 1x1 conv spends ~40 us per call on a few hundred thousand MACs, and the norm
// and ReLU are two more calls.
//
//   out[n, o, s] = relu?(norm?(sum_i w[o, i] * x[n, i, s] + bias[o]))
//
// One task per (band of rows, n, block of kRows output channels), band-major: one band per thread where the bands
// are whole pages, else one band (parallel.h, page_bands). A tile of kRows channels x kCols vectors of positions
// stays in registers while the input channels stream through it (kRows x kCols FMAs per kCols loads and kRows
// broadcasts); then the norm of each finished plane, or the moments of its band (instance_norm.h, BandedNorm), while
// it is in cache, and the optional residual (the residual block's skip) last.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "instance_norm.h"
#include "op_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

namespace detail {

constexpr int kPointwiseRows = 4;  // output channels per tile
// Vectors of positions per tile at most: kPointwiseRows x this many accumulators, plus the input vectors and a
// broadcast weight, fill the 32 zmm / 16 ymm registers.
constexpr int kPointwiseCols = kVecLen == 16 ? 4 : 3;

// Output channels [o0, o0 + Rows) of sample n, positions [s0, s0 + lanes) where (Cols - 1) * kVecLen < lanes <=
// Cols * kVecLen (the last vector may be partial).
template <int Rows, int Cols>
ANYCOST_INLINE void pointwise_tile(const PointwiseConvParams& p, int64_t n, int64_t o0, int64_t s0, int64_t lanes) {
  const int last = static_cast<int>(lanes - (Cols - 1) * kVecLen);
  auto whole = [&](int k) { return k < Cols - 1 || last == kVecLen; };  // vector k has all its lanes
  vfloat acc[Rows][Cols];
  for (int r = 0; r < Rows; ++r) {
    const vfloat b = vset1(p.bias ? p.bias[(o0 + r) * p.bias_s] : 0.f);
    for (int k = 0; k < Cols; ++k) acc[r][k] = b;
  }
  const float* xs = p.x + n * p.x_sn + s0;
  const float* w = p.weight + o0 * p.w_so;
  for (int64_t i = 0; i < p.C_in; ++i) {
    const float* xi = xs + i * p.x_sc;
    vfloat xv[Cols];
    for (int k = 0; k < Cols; ++k) xv[k] = whole(k) ? vload(xi + k * kVecLen) : vload_n(xi + k * kVecLen, last);
    for (int r = 0; r < Rows; ++r) {
      const vfloat wv = vset1(w[r * p.w_so + i * p.w_si]);
      for (int k = 0; k < Cols; ++k) acc[r][k] = vfma(wv, xv[k], acc[r][k]);
    }
  }
  float* out = p.out + (n * p.C_out + o0) * p.S + s0;
  const bool relu_here = p.relu && !p.normalize;
  for (int r = 0; r < Rows; ++r) {
    for (int k = 0; k < Cols; ++k) {
      float* dst = out + r * p.S + k * kVecLen;
      const vfloat v = relu_here ? vlrelu(acc[r][k], vzero()) : acc[r][k];
      if (whole(k))
        vstore(dst, v);
      else
        vstore_n(dst, v, last);
    }
  }
}

// A tile of as many vectors as the strip of `lanes` positions needs (no FMAs on empty vectors: a 64-position plane
// in tiles of 3 vectors did 6 vectors of work for 4).
template <int Rows, int Cols = kPointwiseCols>
ANYCOST_INLINE void pointwise_strip(const PointwiseConvParams& p, int64_t n, int64_t o0, int64_t s0, int64_t lanes) {
  if constexpr (Cols > 1) {
    if (lanes <= (Cols - 1) * kVecLen) return pointwise_strip<Rows, Cols - 1>(p, n, o0, s0, lanes);
  }
  pointwise_tile<Rows, Cols>(p, n, o0, s0, lanes);
}

}  // namespace detail

template <class ParallelFor>
void pointwise_conv(const PointwiseConvParams& p, const ParallelFor& pf) {
  if (!p.x || !p.weight || !p.out || p.N < 0 || p.C_in < 1 || p.C_out < 0 || p.S < 1 || p.row_len < 1 ||
      p.S % p.row_len != 0)
    throw std::invalid_argument("pointwise_conv: bad arguments");
  if (p.N == 0 || p.C_out == 0) return;
  constexpr int R = detail::kPointwiseRows;
  static_assert(R == 4, "the switch below instantiates tiles of 1-4 rows");
  const int64_t blocks = (p.C_out + R - 1) / R, strip = int64_t{detail::kPointwiseCols} * kVecLen;
  const int64_t rows = p.S / p.row_len, bands = detail::page_bands(p.num_threads, rows, p.S, p.out);
  const int64_t per_band = p.N * blocks;
  const BandedNorm norm(p.out, p.N * p.C_out, rows, p.row_len, bands, p.normalize, p.relu, p.eps, p.residual);
  const int64_t grain = std::max<int64_t>(1, 65536 * bands / (R * p.C_in * p.S));
  pf(0, bands * per_band, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / per_band, n = t % per_band / blocks, o0 = t % blocks * R;
      const int64_t n_rows = std::min<int64_t>(R, p.C_out - o0);
      const detail::RowBand band = detail::row_band(b, bands, rows);
      for (int64_t s0 = band.r0 * p.row_len, s1 = band.r1 * p.row_len; s0 < s1; s0 += strip) {
        const int64_t lanes = std::min(strip, s1 - s0);
        switch (n_rows) {
          case 4: detail::pointwise_strip<4>(p, n, o0, s0, lanes); break;
          case 3: detail::pointwise_strip<3>(p, n, o0, s0, lanes); break;
          case 2: detail::pointwise_strip<2>(p, n, o0, s0, lanes); break;
          default: detail::pointwise_strip<1>(p, n, o0, s0, lanes); break;
        }
      }
      for (int64_t r = 0; r < n_rows; ++r) norm.band_done(n * p.C_out + o0 + r, b);
    }
  });
  norm.finish(pf);
}

ANYCOST_CPU_NAMESPACE_END
