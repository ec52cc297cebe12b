// 3x3 transposed conv of stride 2 (padding 1, output padding 1: an [H, W] input gives [2H, 2W]) + bias for
// few channels, optionally followed by the instance norm of each output plane and a ReLU; torch-free CPU path.
// The image-to-image generators' two upsampling convs run it: oneDNN / ATen took 1.3 ms for the student's two
// at 256 px (8% of the fp32 peak) and ~50-60 us each at 32 px, where ATen falls back to its slow path.
//
// Per axis, output 2m is w[1] x[m] and output 2m + 1 is w[2] x[m] + w[0] x[m + 1] (x[H] = 0): the four
// sub-pixel phases read the input grid at offsets 0 and +1 only, so
//   1. a task is (band of output rows, sample), band-major (parallel.h, i2i_bands); it first copies the
//      input rows its band reads, of every plane, with a zero column after them (and zero slack for whole
//      vectors; the row after the image is zeros), into its thread's scratch;
//   2. per output row 2m + py and block of up to 4 output channels, for strips of input columns, the even and
//      the odd output columns stay in registers over all C_in inputs and the row's taps (py = 0: kernel
//      row 1 at input row m; py = 1: kernel row 2 at m and row 0 at m + 1), then are interleaved into the
//      output row; a strip is one vector where one covers the row (a 2-vector strip on an 8- or 16-wide
//      input did 4x or 2x the FMAs);
//   3. the norm and the ReLU: instance_norm.h, BandedNorm.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "instance_norm.h"
#include "op_params.h"
#include "parallel.h"
#include "simd.h"
#include "small_conv.h"

ANYCOST_CPU_NAMESPACE_BEGIN

namespace detail {

constexpr int kConvTOB = 4;                         // output channels per task
// Most vectors of input columns per strip (registers: 4 OB NV + 2 NV + 1).
constexpr int kConvTNV = kVecLen == 16 ? 2 : 1;

struct ConvTLayout {
  int64_t pitch;  // floats per padded row: W + 1 columns, then zeros for the last strip's whole vectors
  int64_t plane;  // floats per staged plane (the rows a band reads)
};

template <int OB, int NV>
void conv_transpose_row(const SmallConvTranspose2dParams& p, const ConvTLayout& l, const float* in, int64_t row0,
                        int64_t n, int64_t o0, int64_t y) {
  const int64_t Wo = 2 * p.W, Ho = 2 * p.H, m = y / 2;
  const int py = static_cast<int>(y % 2);
  // Kernel rows and input rows of this output row's taps.
  const int taps = py ? 2 : 1;
  const int ky[2] = {py ? 2 : 1, 0};
  const int64_t row[2] = {m, m + 1};
  float* out_row[OB];
  vfloat bias[OB];
  output_rows<OB>(p, n, o0, y, Ho, Wo, out_row, bias);
  const bool relu_here = p.relu && !p.normalize;
  const vfloat zero = vzero();
  for (int64_t x0 = 0; x0 < p.W; x0 += NV * kVecLen) {
    vfloat even[OB][NV], odd[OB][NV];
    for (int ob = 0; ob < OB; ++ob)
      for (int j = 0; j < NV; ++j) even[ob][j] = odd[ob][j] = bias[ob];
    for (int64_t i = 0; i < p.C_in; ++i) {
      const float* plane = in + i * l.plane;
      for (int t = 0; t < taps; ++t) {
        const float* src = plane + (row[t] - row0) * l.pitch + x0;
        vfloat a0[NV], a1[NV];
        for (int j = 0; j < NV; ++j) {
          a0[j] = vload(src + j * kVecLen);
          a1[j] = vload(src + j * kVecLen + 1);
        }
        const float* w = p.weight + i * p.w_si + o0 * p.w_so + ky[t] * p.w_sh;
        for (int ob = 0; ob < OB; ++ob) {
          const float* wo = w + ob * p.w_so;
          const vfloat w0 = vset1(wo[0]), w1 = vset1(wo[p.w_sw]), w2 = vset1(wo[2 * p.w_sw]);
          for (int j = 0; j < NV; ++j) {
            even[ob][j] = vfma(w1, a0[j], even[ob][j]);
            odd[ob][j] = vfma(w0, a1[j], vfma(w2, a0[j], odd[ob][j]));
          }
        }
      }
    }
    for (int ob = 0; ob < OB; ++ob)
      for (int j = 0; j < NV; ++j) {
        const int64_t x = x0 + j * kVecLen;  // input column of lane 0
        if (x >= p.W) break;
        const int outputs = static_cast<int>(2 * std::min<int64_t>(kVecLen, p.W - x));
        vfloat e = even[ob][j], o = odd[ob][j];
        if (relu_here) e = vlrelu(e, zero), o = vlrelu(o, zero);
        vfloat lo, hi;
        vinterleave(e, o, lo, hi);
        vstore_n(out_row[ob] + 2 * x, lo, std::min(outputs, kVecLen));
        if (outputs > kVecLen) vstore_n(out_row[ob] + 2 * x + kVecLen, hi, outputs - kVecLen);
      }
  }
}

// One task's row (see conv_transpose_row) for up to kConvTOB channels from o0.
template <int NV>
void conv_transpose_block(const SmallConvTranspose2dParams& p, const ConvTLayout& l, const float* in, int64_t row0,
                          int64_t n, int64_t o0, int64_t y) {
  switch (std::min<int64_t>(kConvTOB, p.C_out - o0)) {
    case 1: conv_transpose_row<1, NV>(p, l, in, row0, n, o0, y); break;
    case 2: conv_transpose_row<2, NV>(p, l, in, row0, n, o0, y); break;
    case 3: conv_transpose_row<3, NV>(p, l, in, row0, n, o0, y); break;
    default: conv_transpose_row<4, NV>(p, l, in, row0, n, o0, y); break;
  }
}

}  // namespace detail

template <class ParallelFor>
void small_conv_transpose2d(const SmallConvTranspose2dParams& p, const ParallelFor& pf) {
  if (!p.x || !p.weight || !p.out || p.N < 1 || p.C_in < 1 || p.C_out < 1 || p.H < 1 || p.W < 1)
    throw std::invalid_argument("small_conv_transpose2d: bad arguments");
  const int64_t Ho = 2 * p.H, Wo = 2 * p.W, bands = detail::i2i_bands(p.num_threads, Ho);
  const int64_t pitch = detail::round_up(p.W + 1 + detail::kConvTNV * kVecLen, kVecLen);
  const BandedNorm norm(p.out, p.N * p.C_out, Ho, Wo, bands, p.normalize, p.relu, p.eps, nullptr);
  const int64_t band_work = p.W * Ho / bands * p.C_in * 6 * p.C_out;
  pf(0, bands * p.N, std::max<int64_t>(1, 65536 / band_work), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / p.N, n = t % p.N;
      const detail::RowBand band = detail::row_band(b, bands, Ho);
      // The input rows the band reads, [row0, row1) of each plane (row H: the zero row after the image), copied into
      // this thread's scratch: no thread writes what another reads.
      const int64_t row0 = band.r0 / 2, row1 = (band.r1 - 1) / 2 + 2;
      const detail::ConvTLayout l{pitch, (row1 - row0) * pitch};
      float* in = static_cast<float*>(thread_workspace(sizeof(float) * p.C_in * l.plane));
      for (int64_t i = 0; i < p.C_in; ++i)
        for (int64_t y = row0; y < row1; ++y) {
          float* dst = in + i * l.plane + (y - row0) * pitch;
          std::fill(dst, dst + pitch, 0.f);
          if (y == p.H) continue;
          const float* src = p.x + n * p.x_sn + i * p.x_sc + y * p.x_sh;
          for (int64_t x = 0; x < p.W; ++x) dst[x] = src[x * p.x_sw];
        }
      for (int64_t y = band.r0; y < band.r1; ++y)  // channel blocks innermost, as in small_conv2d
        for (int64_t o0 = 0; o0 < p.C_out; o0 += detail::kConvTOB) {
          if (p.W <= kVecLen)
            detail::conv_transpose_block<1>(p, l, in, row0, n, o0, y);
          else
            detail::conv_transpose_block<detail::kConvTNV>(p, l, in, row0, n, o0, y);
        }
      for (int64_t o = 0; o < p.C_out; ++o) norm.band_done(n * p.C_out + o, b);
    }
  });
  norm.finish(pf);
}

ANYCOST_CPU_NAMESPACE_END
