// 3x3 transposed conv of stride 2 (padding 1, output padding 1: an [H, W] input gives [2H, 2W]) + bias for
// few channels, optionally followed by the instance norm of each output plane and a ReLU; torch-free CPU path.
// The image-to-image generators' two upsampling convs run it: oneDNN / ATen took 1.3 ms for the student's two
// at 256 px (8% of the fp32 peak) and ~50-60 us each at 32 px, where ATen falls back to its slow path.
//
// Per axis, output 2m is w[1] x[m] and output 2m + 1 is w[2] x[m] + w[0] x[m + 1] (x[H] = 0): the four
// sub-pixel phases read the input grid at offsets 0 and +1 only, so
//   1. every input plane is copied once with one zero row and column after it (and zero slack for whole
//      vectors) into a buffer all tasks read (the calling thread's kCallSlot scratch);
//   2. a task is (sample, block of up to 4 output channels, output row 2m + py): for strips of input
//      columns, the even and the odd output columns of up to 4 channels stay in registers over all C_in
//      inputs and the row's taps (py = 0: kernel row 1 at input row m; py = 1: kernel row 2 at m and
//      row 0 at m + 1), then are interleaved into the output row; a strip is one vector where one covers
//      the row (a 2-vector strip on an 8- or 16-wide input did 4x or 2x the FMAs);
//   3. with normalize, one task per output plane applies the norm and the ReLU (instance_norm.h).
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
  int64_t plane;  // floats per padded plane (H + 1 rows)
};

template <int OB, int NV>
void conv_transpose_row(const SmallConvTranspose2dParams& p, const ConvTLayout& l, const float* padded, int64_t n,
                        int64_t o0, int64_t y) {
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
      const float* plane = padded + (n * p.C_in + i) * l.plane;
      for (int t = 0; t < taps; ++t) {
        const float* src = plane + row[t] * l.pitch + x0;
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
void conv_transpose_block(const SmallConvTranspose2dParams& p, const ConvTLayout& l, const float* padded, int64_t n,
                          int64_t o0, int64_t y) {
  switch (std::min<int64_t>(kConvTOB, p.C_out - o0)) {
    case 1: conv_transpose_row<1, NV>(p, l, padded, n, o0, y); break;
    case 2: conv_transpose_row<2, NV>(p, l, padded, n, o0, y); break;
    case 3: conv_transpose_row<3, NV>(p, l, padded, n, o0, y); break;
    default: conv_transpose_row<4, NV>(p, l, padded, n, o0, y); break;
  }
}

}  // namespace detail

template <class ParallelFor>
void small_conv_transpose2d(const SmallConvTranspose2dParams& p, const ParallelFor& pf) {
  if (!p.x || !p.weight || !p.out || p.N < 1 || p.C_in < 1 || p.C_out < 1 || p.H < 1 || p.W < 1)
    throw std::invalid_argument("small_conv_transpose2d: bad arguments");
  detail::ConvTLayout l{};
  l.pitch = detail::round_up(p.W + 1 + detail::kConvTNV * kVecLen, kVecLen);
  l.plane = (p.H + 1) * l.pitch;
  float* padded = static_cast<float*>(thread_workspace(sizeof(float) * p.N * p.C_in * l.plane, kCallSlot));
  const int64_t rows = p.N * p.C_in * (p.H + 1);
  pf(0, rows, std::max<int64_t>(1, 4096 / l.pitch), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* dst = padded + r * l.pitch;
      std::fill(dst, dst + l.pitch, 0.f);
      const int64_t plane = r / (p.H + 1), y = r % (p.H + 1);
      if (y == p.H) continue;  // the zero row after the image
      const float* src = p.x + (plane / p.C_in) * p.x_sn + (plane % p.C_in) * p.x_sc + y * p.x_sh;
      for (int64_t x = 0; x < p.W; ++x) dst[x] = src[x * p.x_sw];
    }
  });
  const int64_t Ho = 2 * p.H, Wo = 2 * p.W;
  const int64_t blocks = (p.C_out + detail::kConvTOB - 1) / detail::kConvTOB;
  const int64_t row_work = p.W * p.C_in * 6 * detail::kConvTOB;
  pf(0, p.N * blocks * Ho, std::max<int64_t>(1, 65536 / row_work), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t y = t % Ho, nb = t / Ho, n = nb / blocks, o0 = (nb % blocks) * detail::kConvTOB;
      if (p.W <= kVecLen)
        detail::conv_transpose_block<1>(p, l, padded, n, o0, y);
      else
        detail::conv_transpose_block<detail::kConvTNV>(p, l, padded, n, o0, y);
    }
  });
  if (p.normalize) instance_norm_planes(p.out, p.N * p.C_out, Ho * Wo, p.eps, p.relu, pf);
}

ANYCOST_CPU_NAMESPACE_END
