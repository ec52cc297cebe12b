// Packing of the input rows and weight tiles for the fused modulated conv.
//
// Input: rows of KC channels copied into the "flattened padded" layout read
// by conv_ukernel (pitch Wp = W + 1 with one shared zero column, or W for
// 1x1), or the window of a chunk of Winograd tiles. Weights: a tile of MR output channels x KC input channels x taps of
// the strided (sliced) weight view, multiplied by the style of each input
// channel, stored so that the micro-kernel broadcasts walk one contiguous
// stream; the sums of squares for the demodulation come for free.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "modconv_params.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

// Copy the window rows [y0, y0 + nrows) x cols [x0, x0 + ncols) of kc channels (zero outside the
// image) to dst[i * cs + r * pitch + c]; the rest of each row and of each channel is zeroed. With
// x0 = -1, ncols = W + 1 and pitch W + 1 this is the direct path's "flattened padded" layout (one
// zero column shared by the right edge of a row and the left edge of the next, see
// conv_microkernel.h); the Winograd path stages the window of a chunk of tiles.
inline void pack_input_window(float* dst, int64_t cs, int64_t pitch, const float* src, int64_t sc,
                              int64_t sh, int64_t sw, int64_t kc, int64_t y0, int64_t nrows,
                              int64_t x0, int64_t ncols, int64_t H, int64_t W) {
  const int64_t xa = std::max<int64_t>(x0, 0), xb = std::min(x0 + ncols, W);
  for (int64_t i = 0; i < kc; ++i) {
    float* d = dst + i * cs;
    const float* s = src + i * sc;
    for (int64_t r = 0; r < nrows; ++r) {
      float* dr = d + r * pitch;
      const int64_t y = y0 + r;
      if (y < 0 || y >= H || xa >= xb) {
        std::memset(dr, 0, sizeof(float) * pitch);
        continue;
      }
      std::memset(dr, 0, sizeof(float) * (xa - x0));
      const float* sr = s + y * sh;
      if (sw == 1) {
        std::memcpy(dr + (xa - x0), sr + xa, sizeof(float) * (xb - xa));
      } else {
        for (int64_t x = xa; x < xb; ++x) dr[x - x0] = sr[x * sw];
      }
      std::memset(dr + (xb - x0), 0, sizeof(float) * (pitch - (xb - x0)));
    }
    std::memset(d + nrows * pitch, 0, sizeof(float) * (cs - nrows * pitch));
  }
}

// Source tap (ky, kx) of every packed tap. The 3x3 conv uses row-major
// order; the upsampling conv orders them by sub-pixel phase:
//   ee (2x2): W00 W02 W20 W22 | eo (2x1): W01 W21 | oe (1x2): W10 W12 | oo: W11
constexpr int kTapsConv3[9][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1},
                                  {1, 2}, {2, 0}, {2, 1}, {2, 2}};
constexpr int kTapsUp[9][2] = {{0, 0}, {0, 2}, {2, 0}, {2, 2}, {0, 1},
                               {2, 1}, {1, 0}, {1, 2}, {1, 1}};

// Offset (in units of MR floats) of packed tap q of input channel i inside a
// KC block: off = base[q] + i * mult[q]. The 3x3 conv interleaves taps per
// channel ([i][9]); the upsampling conv stores each phase contiguously
// ([phase][i][taps of phase]) so that every phase kernel streams its weights.
struct TapLayout {
  int64_t base[9], mult[9];
  TapLayout(bool upsample, int64_t kc, int64_t taps) {
    static const int start[9] = {0, 0, 0, 0, 4, 4, 6, 6, 8}, cnt[9] = {4, 4, 4, 4, 2, 2, 2, 2, 1};
    for (int q = 0; q < taps; ++q) {
      if (upsample) {
        base[q] = kc * start[q] + (q - start[q]);
        mult[q] = cnt[q];
      } else {
        base[q] = q;
        mult[q] = taps;
      }
    }
  }
};

#if ANYCOST_CPU_AVX2
// Fast path of the packing for the common case: 4 full rows (of a tile of MR,
// a multiple of 4; d points at the first of the 4 within the tile), 3x3 taps
// contiguous in memory (any slice of a contiguous [C_out, C_in, 3, 3] weight).
// Per input channel the 4 x 9 block is transposed in registers into 9 columns
// of 4 (one 16-byte store each) instead of 36 scalar stores.
inline void pack_weights_3x3_mr4(float* d, const ModConvParams& p, const float* s_n, int64_t o,
                                 int64_t i0, int64_t kc, int64_t MR, double* sumsq) {
  const TapLayout lay(p.upsample, kc, 9);
  int64_t base[9], mult[9];  // by source tap ky*3+kx
  for (int q = 0; q < 9; ++q) {
    const int(*src)[2] = p.upsample ? kTapsUp : kTapsConv3;
    base[src[q][0] * 3 + src[q][1]] = MR * lay.base[q];
    mult[src[q][0] * 3 + src[q][1]] = MR * lay.mult[q];
  }
  const float* w0 = p.weight + o * p.w_so + i0 * p.w_si;
  const int64_t so = p.w_so;
  __m256 ss[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                  _mm256_setzero_ps()};
  __m128 ss8 = _mm_setzero_ps();
  for (int64_t i = 0; i < kc; ++i) {
    const __m256 sv = _mm256_set1_ps(s_n[(i0 + i) * p.s_sc]);
    const float* wi = w0 + i * p.w_si;
    __m256 r[4];
    for (int m = 0; m < 4; ++m) {
      r[m] = _mm256_mul_ps(_mm256_loadu_ps(wi + m * so), sv);  // taps 0..7 of row m
      ss[m] = _mm256_fmadd_ps(r[m], r[m], ss[m]);
    }
    __m128 c8 = _mm_mul_ps(_mm_set_ps(wi[3 * so + 8], wi[2 * so + 8], wi[so + 8], wi[8]),
                           _mm256_castps256_ps128(sv));
    ss8 = _mm_fmadd_ps(c8, c8, ss8);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpacklo_ps(r[2], r[3]);
    const __m256 t2 = _mm256_unpackhi_ps(r[0], r[1]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t1, 0x44);  // taps 0 | 4
    const __m256 u1 = _mm256_shuffle_ps(t0, t1, 0xEE);  // taps 1 | 5
    const __m256 u2 = _mm256_shuffle_ps(t2, t3, 0x44);  // taps 2 | 6
    const __m256 u3 = _mm256_shuffle_ps(t2, t3, 0xEE);  // taps 3 | 7
    _mm_storeu_ps(d + base[0] + i * mult[0], _mm256_castps256_ps128(u0));
    _mm_storeu_ps(d + base[1] + i * mult[1], _mm256_castps256_ps128(u1));
    _mm_storeu_ps(d + base[2] + i * mult[2], _mm256_castps256_ps128(u2));
    _mm_storeu_ps(d + base[3] + i * mult[3], _mm256_castps256_ps128(u3));
    _mm_storeu_ps(d + base[4] + i * mult[4], _mm256_extractf128_ps(u0, 1));
    _mm_storeu_ps(d + base[5] + i * mult[5], _mm256_extractf128_ps(u1, 1));
    _mm_storeu_ps(d + base[6] + i * mult[6], _mm256_extractf128_ps(u2, 1));
    _mm_storeu_ps(d + base[7] + i * mult[7], _mm256_extractf128_ps(u3, 1));
    _mm_storeu_ps(d + base[8] + i * mult[8], c8);
  }
  alignas(32) float h[8], h8[4];
  _mm_store_ps(h8, ss8);
  for (int m = 0; m < 4; ++m) {
    _mm256_store_ps(h, ss[m]);
    double t = h8[m];
    for (int k = 0; k < 8; ++k) t += h[k];
    sumsq[m] += t;
  }
}
#endif

// Pack the weight tile [o0, o0+MCp) x [i0, i0+kc) as [ob][TapLayout][MR], each
// value multiplied by the style s[i]; rows o >= o_end are zero. Accumulates
// the per-channel sum of squares of the packed values into sumsq (partial
// sums over one block in independent float chains, the total in double).
template <int TAPS>
inline void pack_weights_t(float* dst, const ModConvParams& p, const float* s_n, int64_t o0,
                           int64_t o_end, int64_t MCp, int64_t MR, int64_t i0, int64_t kc,
                           double* sumsq) {
  constexpr int CH = TAPS == 1 ? 4 : TAPS;  // independent accumulation chains
  const TapLayout lay(p.upsample, kc, TAPS);
  const int(*tap_src)[2] = p.upsample ? kTapsUp : kTapsConv3;
  int64_t toff[TAPS];
  for (int t = 0; t < TAPS; ++t)
    toff[t] = (TAPS == 1) ? 0 : tap_src[t][0] * p.w_sh + tap_src[t][1] * p.w_sw;
  for (int64_t ob = 0; ob < MCp / MR; ++ob) {
    float* d = dst + ob * kc * TAPS * MR;
    int64_t m_fast = 0;  // rows packed by the fast path (groups of 4)
#if ANYCOST_CPU_AVX2
    if (TAPS == 9 && MR % 4 == 0 && p.w_sw == 1 && p.w_sh == 3)
      for (; m_fast < MR && o0 + ob * MR + m_fast + 4 <= o_end; m_fast += 4)
        pack_weights_3x3_mr4(d + m_fast, p, s_n, o0 + ob * MR + m_fast, i0, kc, MR,
                             sumsq + ob * MR + m_fast);
#endif
    for (int64_t m = m_fast; m < MR; ++m) {
      const int64_t o = o0 + ob * MR + m;
      if (o >= o_end) {
        for (int64_t k = 0; k < kc * TAPS; ++k) d[k * MR + m] = 0.f;
        continue;
      }
      const float* wo = p.weight + o * p.w_so + i0 * p.w_si;
      const float* si = s_n + i0 * p.s_sc;
      float acc[CH] = {};
      for (int64_t i = 0; i < kc; ++i) {
        const float sv = si[i * p.s_sc];
        const float* wi = wo + i * p.w_si;
        for (int t = 0; t < TAPS; ++t) {
          const float v = wi[toff[t]] * sv;
          d[(lay.base[t] + i * lay.mult[t]) * MR + m] = v;
          acc[TAPS == 1 ? (i & 3) : t] += v * v;
        }
      }
      double ss = 0.0;
      for (int c = 0; c < CH; ++c) ss += acc[c];
      sumsq[ob * MR + m] += ss;
    }
  }
}

inline void pack_weights(float* dst, const ModConvParams& p, const float* s_n, int64_t o0,
                         int64_t o_end, int64_t MCp, int64_t MR, int64_t i0, int64_t kc,
                         int64_t taps, double* sumsq) {
  if (taps == 1)
    pack_weights_t<1>(dst, p, s_n, o0, o_end, MCp, MR, i0, kc, sumsq);
  else
    pack_weights_t<9>(dst, p, s_n, o0, o_end, MCp, MR, i0, kc, sumsq);
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
