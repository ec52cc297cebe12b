// Depthwise 3x3 conv (stride 1, padding 1: reflected or zero) + bias, optionally followed by an
// instance norm of each output plane, torch-free CPU path. The image-to-image students' separable
// blocks run one per conv (anycost/models/i2i/layers.py): at their sizes (8-64 px planes of 8-64
// channels) oneDNN's grouped conv costs ~0.1 ms of fixed overhead per call and the separate instance
// norm as much again, for a few thousand MACs.
//
//   out[n, c] = norm?(sum_{dy, dx} w[c, dy, dx] * pad(x[n, c])[y + dy, x + dx] + bias[c])
//
// One task per (band of rows, n, c), band-major: one band per thread where the bands are whole pages, else one band
// (parallel.h, page_bands). The band's rows are copied with their padding into the thread's scratch (which also
// makes any input strides contiguous), each output row is 9 FMAs per vector of positions, and the norm (or the
// band's moments) follows while it is in L1 (instance_norm.h, BandedNorm). A plane whose rows are narrower than a
// vector and divide it (the 8 x 8 trunk of a 32 px student with 16 lanes) is computed whole, several rows per vector
// (`rows_per_vector`), with no lane masked.
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

// Rows [r0, r1) of the plane x[n, c] with one row / column of padding on each side: the padded rows r0 .. r1 + 1,
// [r1 - r0 + 2][W + 2], into `pad`.
inline void pad_rows(const DepthwiseConv3x3Params& p, const float* src, int64_t r0, int64_t r1, float* pad) {
  const int64_t H = p.H, W = p.W, Wp = W + 2;
  for (int64_t y = r0 - 1; y <= r1; ++y) {  // source rows; -1 and H are the padding
    float* dst = pad + (y - r0 + 1) * Wp;
    const int64_t from = y < 0 ? 1 : y >= H ? H - 2 : y;
    if (from != y && !p.reflect) {
      std::fill(dst, dst + Wp, 0.f);
      continue;
    }
    const float* row = src + from * p.x_sh;
    if (p.x_sw == 1) {  // in vectors: a memcpy call per row of 8-64 floats cost as much as the row's conv
      int64_t x = 0;
      for (; x + kVecLen <= W; x += kVecLen) vstore(dst + 1 + x, vload(row + x));
      if (x < W) vstore_n(dst + 1 + x, vload_n(row + x, int(W - x)), int(W - x));
    } else {
      for (int64_t x = 0; x < W; ++x) dst[x + 1] = row[x * p.x_sw];
    }
    // From the source row: reading them back from the vector just stored into `dst` stalled on store forwarding
    // (a quarter of the time of the 8 x 8 planes of a 32 px student).
    dst[0] = p.reflect ? row[p.x_sw] : 0.f;
    dst[W + 1] = p.reflect ? row[(W - 2) * p.x_sw] : 0.f;
  }
}

// Rows [r0, r1) of one plane (taps w[3 * dy + dx] and bias b, broadcast), a row at a time: `pad` gets those rows with
// their padding ([r1 - r0 + 2][W + 2]); each output row is whole vectors, then its tail (masked loads and stores
// measured slower in the interior).
inline void depthwise_plane_rows(const DepthwiseConv3x3Params& p, const float* src, const vfloat* w, vfloat b,
                                 int64_t r0, int64_t r1, float* pad, float* out) {
  const int64_t W = p.W, Wp = W + 2;
  pad_rows(p, src, r0, r1, pad);
  for (int64_t y = r0; y < r1; ++y) {
    const float* top = pad + (y - r0) * Wp;
    auto row_vector = [&](int64_t x, int n_lanes) {
      vfloat acc = b;
      for (int dy = 0; dy < 3; ++dy) {
        const float* r = top + dy * Wp + x;
        for (int dx = 0; dx < 3; ++dx)
          acc = vfma(w[3 * dy + dx], n_lanes == kVecLen ? vload(r + dx) : vload_n(r + dx, n_lanes), acc);
      }
      if (n_lanes == kVecLen)
        vstore(out + y * W + x, acc);
      else
        vstore_n(out + y * W + x, acc, n_lanes);
    };
    int64_t x = 0;
    for (; x + kVecLen <= W; x += kVecLen) row_vector(x, kVecLen);
    if (x < W) row_vector(x, static_cast<int>(W - x));
  }
}

// How many whole rows of a W-wide plane of H rows one vector holds on the packed path: kVecLen / W where W divides
// kVecLen and the rows fill whole vectors, else 0 (one row per vector or more, lanes masked at the row's tail).
inline int64_t rows_per_vector(int64_t H, int64_t W) {
  if (W < 2 || W >= kVecLen || kVecLen % W != 0) return 0;
  const int64_t rows = kVecLen / W;
  return H % rows == 0 ? rows : 0;
}

// One plane (taps and bias as for depthwise_plane_rows) on the packed path: `stage` gets the plane with one row of
// padding above and below at pitch W (and a guard float before and after), so the vector of rows y .. y + rows - 1
// at a tap row is one load, and the taps' left and right neighbours are the same load one float earlier or later,
// with the lanes at the rows' first and last column taken from the other shift (reflection: x = -1 is x = 1, x = W
// is x = W - 2) or zeroed. In the same order of FMAs as the row path, so both give the same floats.
inline void depthwise_plane_packed(const DepthwiseConv3x3Params& p, const float* src, const vfloat* w, vfloat b,
                                   float* stage, float* out) {
  const int64_t H = p.H, W = p.W, rows = kVecLen / W;
  stage[-1] = stage[(H + 2) * W] = 0.f;  // read into lanes that the blends replace
  const bool contiguous = p.x_sw == 1 && p.x_sh == W;
  if (contiguous) {
    for (int64_t i = 0; i < H * W; i += kVecLen) vstore(stage + W + i, vload(src + i));
  } else {
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) stage[(y + 1) * W + x] = src[y * p.x_sh + x * p.x_sw];
  }
  for (int64_t x = 0; x < W; ++x) {  // from the source rows 1 and H - 2 (the stage rows 2 and H - 1)
    stage[x] = p.reflect ? src[p.x_sh + x * p.x_sw] : 0.f;
    stage[(H + 1) * W + x] = p.reflect ? src[(H - 2) * p.x_sh + x * p.x_sw] : 0.f;
  }
  unsigned first = 0, last = 0;  // lane bits of the rows' first and last columns
  for (int64_t k = 0; k < kVecLen; k += W) {
    first |= 1u << k;
    last |= 1u << (k + W - 1);
  }
  const vfloat zero = vzero();
  for (int64_t y = 0; y < H; y += rows) {
    vfloat acc = b;
    for (int dy = 0; dy < 3; ++dy) {
      const float* r = stage + (y + dy) * W;
      const vfloat before = vload(r - 1), after = vload(r + 1);
      acc = vfma(w[3 * dy], vblend(before, p.reflect ? after : zero, first), acc);
      acc = vfma(w[3 * dy + 1], vload(r), acc);
      acc = vfma(w[3 * dy + 2], vblend(after, p.reflect ? before : zero, last), acc);
    }
    vstore(out + y * W, acc);
  }
}

}  // namespace detail

template <class ParallelFor>
void depthwise_conv3x3(const DepthwiseConv3x3Params& p, const ParallelFor& pf) {
  if (!p.x || !p.weight || !p.out || p.N < 0 || p.C < 0 || p.H < 1 || p.W < 1 ||
      (p.reflect && (p.H < 2 || p.W < 2)))
    throw std::invalid_argument("depthwise_conv3x3: bad arguments");
  if (p.N == 0 || p.C == 0) return;
  const int64_t H = p.H, W = p.W, Wp = W + 2, plane = H * W, planes = p.N * p.C;
  const bool packed = detail::rows_per_vector(H, W) > 0;  // whole planes of a few vectors: one band
  const int64_t bands = packed ? 1 : detail::page_bands(p.num_threads, H, plane, p.out);
  const BandedNorm norm(p.out, planes, H, W, bands, p.normalize, false, p.eps, nullptr);
  const int64_t grain = std::max<int64_t>(1, 16384 * bands / plane);
  pf(0, bands * planes, grain, [&](int64_t t0, int64_t t1) {
    float* pad = static_cast<float*>(thread_workspace(sizeof(float) * ((H + 2) * Wp + 2 * kVecLen)));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / planes, q = t % planes, n = q / p.C, c = q % p.C;
      const float* src = p.x + n * p.x_sn + c * p.x_sc;
      const float* wc = p.weight + c * p.w_sc;
      vfloat w[9];
      for (int k = 0; k < 9; ++k) w[k] = vset1(wc[(k / 3) * p.w_sh + (k % 3) * p.w_sw]);
      const vfloat bias = vset1(p.bias ? p.bias[c * p.bias_s] : 0.f);
      float* out = p.out + q * plane;
      if (packed) {
        detail::depthwise_plane_packed(p, src, w, bias, pad + kVecLen, out);
      } else {
        const detail::RowBand band = detail::row_band(b, bands, H);
        detail::depthwise_plane_rows(p, src, w, bias, band.r0, band.r1, pad, out);
      }
      norm.band_done(q, b);
    }
  });
  norm.finish(pf);
}

ANYCOST_CPU_NAMESPACE_END
