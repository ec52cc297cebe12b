// The epilogue of the bf16 styled conv (anycost/ops/bf16.py), torch-free CPU path: one pass from the
// bf16 output of oneDNN's convolution to the bf16 activations of the next layer.
//
//   v = blur?(conv)[n, y, x, c] * scale[n, c] + bias[c] + noise[n, y, x] * noise_strength
//   out = activate ? leaky_relu(v, alpha) : v           (rounded to bf16 once, at the end)
//
// Plain layers read the conv output as it is. Upsampling layers read the four sub-pixel phases of
// the stride-2 transposed conv, which the caller computes as one ordinary conv with a 2x2 kernel
// and 4 * C outputs (oneDNN runs that 2-3x faster than its transposed conv at 8-128 px): the
// transposed conv's output t[qy, qx] (2H' + 1 rows and columns for an input of H') is phase
// (qy & 1, qx & 1) at (qy >> 1, qx >> 1), and the StyleGAN2 blur after it (the [1, 3, 3, 1] FIR,
// gain 4, padding 1) is separable:
//   out[y, x] = sum_{i, j < 4} k[j] k[i] t[y + j - 1, x + i - 1],   k = [1, 3, 3, 1] / 4,
// with t = 0 outside [0, 2H'] (the phase planes' last odd row and column are not read). Each task is
// one output row, or two of an upsampling layer (they share three of their input rows). A plain layer may also
// sum the ToRGB of its result (bf16_epilogue_rgb_row), and then need not keep the result itself.
// Torch's separate passes (blur as a depthwise conv, noise add, leaky ReLU on bf16) cost 3-4x this.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "op_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

namespace detail {

constexpr float kBlurTaps[4] = {0.25f, 0.75f, 0.75f, 0.25f};  // [1, 3, 3, 1] / 4: the 2-D kernel has gain 4

// scale, bias, noise and activation of one position's channels [c0, c0 + n) of v (before the rounding to bf16).
ANYCOST_INLINE vfloat bf16_finish(const Bf16EpilogueParams& p, const float* scale, vfloat noise, int64_t c0, int n,
                                  vfloat v) {
  if (scale) v = vmul(v, vload_n(scale + c0, n));
  if (p.bias) v = vadd(v, vload_strided(p.bias + c0 * p.bias_s, p.bias_s, n));
  if (p.noise) v = vadd(v, noise);
  if (p.activate) v = vlrelu(v, vset1(p.alpha));
  return v;
}

inline void bf16_epilogue_row(const Bf16EpilogueParams& p, int64_t n, int64_t y) {
  const float* scale = p.scale ? p.scale + n * p.scale_sn : nullptr;
  const float* noise_row = p.noise ? p.noise + n * p.noise_sn + y * p.noise_sh : nullptr;
  uint16_t* out_row = p.out + n * p.o_sn + y * p.o_sh;
  const uint16_t* x_row = p.x + n * p.x_sn + y * p.x_sh;
  for (int64_t x = 0; x < p.W; ++x) {
    const vfloat noise = vset1(noise_row ? noise_row[x * p.noise_sw] * p.noise_strength : 0.f);
    for (int64_t c = 0; c < p.C; c += kVecLen) {
      const int nl = static_cast<int>(std::min<int64_t>(kVecLen, p.C - c));
      vstore_bf16(out_row + x * p.o_sw + c, bf16_finish(p, scale, noise, c, nl, vload_bf16(x_row + x * p.x_sw + c, nl)),
                  nl);
    }
  }
}

// Row y of a plain layer with its ToRGB (p.rgb). Each position's channels are finished as in bf16_epilogue_row and
// rounded to bf16 (stored when the output is kept), and give the three sums of rgb_w[n, o, c] * v[c], which go into
// acc[o][lane_bitrev[i]] for the i-th position of a block of kVecLen: vsum_lanes(acc[o]) is then the block's RGB in
// position order.
inline void bf16_epilogue_rgb_row(const Bf16EpilogueParams& p, int64_t n, int64_t y) {
  const float* scale = p.scale ? p.scale + n * p.scale_sn : nullptr;
  const float* noise_row = p.noise ? p.noise + n * p.noise_sn + y * p.noise_sh : nullptr;
  const uint16_t* x_row = p.x + n * p.x_sn + y * p.x_sh;
  uint16_t* out_row = p.out ? p.out + n * p.o_sn + y * p.o_sh : nullptr;
  const int64_t C = p.C, plane = p.H * p.W;
  const float* w[kRgbChannels];
  for (int o = 0; o < kRgbChannels; ++o) w[o] = p.rgb_w + (n * kRgbChannels + o) * C;
  vfloat acc[kRgbChannels][kVecLen];
  for (int64_t x0 = 0; x0 < p.W; x0 += kVecLen) {
    const int nb = static_cast<int>(std::min<int64_t>(kVecLen, p.W - x0));
    for (int j = 0; j < kVecLen; ++j) {
      vfloat sum[kRgbChannels] = {vzero(), vzero(), vzero()};
      const int i = lane_bitrev[j];
      if (i < nb) {
        const int64_t x = x0 + i;
        const vfloat noise = vset1(noise_row ? noise_row[x * p.noise_sw] * p.noise_strength : 0.f);
        for (int64_t c = 0; c < C; c += kVecLen) {
          const int nl = static_cast<int>(std::min<int64_t>(kVecLen, C - c));
          const vfloat v = bf16_finish(p, scale, noise, c, nl, vload_bf16(x_row + x * p.x_sw + c, nl));
          if (out_row) vstore_bf16(out_row + x * p.o_sw + c, v, nl);
          const vfloat r = vround_bf16(v);  // its lanes past nl meet zero weights
          for (int o = 0; o < kRgbChannels; ++o) sum[o] = vfma(r, vload_n(w[o] + c, nl), sum[o]);
        }
      }
      for (int o = 0; o < kRgbChannels; ++o) acc[o][j] = sum[o];
    }
    for (int o = 0; o < kRgbChannels; ++o) {
      const int64_t at = (n * kRgbChannels + o) * plane + y * p.W + x0;
      vfloat r = vadd(vsum_lanes(acc[o]), vset1(p.rgb_bias[o]));
      if (p.rgb_skip) r = vadd(r, vload_n(p.rgb_skip + at, nb));
      vstore_n(p.rgb + at, r, nb);
    }
  }
}

// Output rows y and y + 1 (y even) of an upsampling layer. They read the five rows t[y - 1 .. y + 3] (t[y - 1]
// and t[y + 3] may lie outside [0, 2H'] and read as zero): one load of each per column serves both rows' vertical
// taps. Column by column, col[qx % 4] = sum_j k[j] t[row + j - 1, qx] for qx = -1 .. W, then
// out[row, qx - 2] = sum_i k[i] col[qx - 3 + i] once the four columns are in (W = 2 W' output columns; t's columns
// -1 and W + 1 are zero). The two rows' last four columns stay in the thread's scratch (L1).
inline void bf16_epilogue_up_rows(const Bf16EpilogueParams& p, int64_t n, int64_t y) {
  const float* scale = p.scale ? p.scale + n * p.scale_sn : nullptr;
  const int64_t C = p.C;
  const uint16_t* t_rows[5];
  bool valid[5];
  for (int r = 0; r < 5; ++r) {
    const int64_t qy = y + r - 1;
    valid[r] = qy >= 0 && qy <= p.H;
    t_rows[r] = valid[r] ? p.x + n * p.x_sn + (qy >> 1) * p.x_sh + (qy & 1) * 2 * C : nullptr;
  }
  float* cols = static_cast<float*>(thread_workspace(sizeof(float) * 8 * C));  // [row of the pair][slot][C]
  std::fill(cols, cols + 8 * C, 0.f);  // column -1 (and the slots not yet written)
  const vfloat k0 = vset1(kBlurTaps[0]), k1 = vset1(kBlurTaps[1]);
  for (int64_t qx = 0; qx <= p.W + 1; ++qx) {
    float* col[2] = {cols + (qx & 3) * C, cols + (4 + (qx & 3)) * C};
    if (qx <= p.W) {
      const int64_t offset = (qx >> 1) * p.x_sw + (qx & 1) * C;
      for (int64_t c = 0; c < C; c += kVecLen) {
        const int nl = static_cast<int>(std::min<int64_t>(kVecLen, C - c));
        vfloat a[5];
        for (int r = 0; r < 5; ++r) a[r] = valid[r] ? vload_bf16(t_rows[r] + offset + c, nl) : vzero();
        const vfloat mid = vmul(k1, vadd(a[1], a[2])), mid1 = vmul(k1, vadd(a[2], a[3]));
        vstore_n(col[0] + c, vfma(k0, vadd(a[0], a[3]), mid), nl);
        vstore_n(col[1] + c, vfma(k0, vadd(a[1], a[4]), mid1), nl);
      }
    } else {
      std::fill(col[0], col[0] + C, 0.f);  // column W + 1
      std::fill(col[1], col[1] + C, 0.f);
    }
    if (qx < 2) continue;
    const int64_t x = qx - 2;  // its columns x - 1 .. x + 2 are the slots of qx - 3 .. qx
    for (int row = 0; row < 2; ++row) {
      const float* ring = cols + 4 * row * C;
      const float* c0 = ring + ((qx + 1) & 3) * C;
      const float* c1 = ring + ((qx + 2) & 3) * C;
      const float* c2 = ring + ((qx + 3) & 3) * C;
      const float* noise_row = p.noise ? p.noise + n * p.noise_sn + (y + row) * p.noise_sh : nullptr;
      const vfloat noise = vset1(noise_row ? noise_row[x * p.noise_sw] * p.noise_strength : 0.f);
      uint16_t* out = p.out + n * p.o_sn + (y + row) * p.o_sh + x * p.o_sw;
      for (int64_t c = 0; c < C; c += kVecLen) {
        const int nl = static_cast<int>(std::min<int64_t>(kVecLen, C - c));
        vfloat v = vmul(k0, vadd(vload_n(c0 + c, nl), vload_n(col[row] + c, nl)));
        v = vfma(k1, vadd(vload_n(c1 + c, nl), vload_n(c2 + c, nl)), v);
        vstore_bf16(out + c, bf16_finish(p, scale, noise, c, nl, v), nl);
      }
    }
  }
}

}  // namespace detail

template <class ParallelFor>
void bf16_epilogue(const Bf16EpilogueParams& p, const ParallelFor& pf) {
  if (!p.x || !(p.out || p.rgb) || p.N < 1 || p.C < 1 || p.H < 1 || p.W < 1 ||
      (p.upsample && (p.H % 2 || p.W % 2 || p.rgb)) || (p.rgb && !(p.rgb_w && p.rgb_bias)))
    throw std::invalid_argument("bf16_epilogue: bad arguments");
  const int64_t rows = p.upsample ? p.H / 2 : p.H;  // tasks per sample: pairs of rows when upsampling
  const int64_t row_work = p.W * p.C * (p.upsample ? 8 : 1);
  const int64_t grain = std::max<int64_t>(1, 32768 / row_work);
  pf(0, p.N * rows, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (p.upsample)
        detail::bf16_epilogue_up_rows(p, t / rows, 2 * (t % rows));
      else if (p.rgb)
        detail::bf16_epilogue_rgb_row(p, t / rows, t % rows);
      else
        detail::bf16_epilogue_row(p, t / rows, t % rows);
    }
  });
}

ANYCOST_CPU_NAMESPACE_END
