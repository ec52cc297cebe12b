// Packing for the int8 styled conv (qconv_blocked.h): the int8 weights into the level-independent
// layout of qconv_params.h (once per layer and width, by the caller), and the activation quantise
// step (per call): modulate by the style, round to int8 and store in the micro-kernel's layout.
//
// Quantised activations of one sample and one group of kQGroup = 4 input channels form a "plane" of
// 32-bit words, one per position of the padded grid: row r (0 .. H+1) holds image row r - 1 (rows 0
// and H+1 are the zero padding), column c (0 .. W) image column c - 1 (column 0 is the zero padding
// shared by the neighbouring rows), so a 3x3 tap (ky, kx) of output (y, x) is the word at
// (y + ky) * Wp + x + kx (Wp = W + 1). Byte c of a word is channel 4 * group + c. Zero is stored as
// kQActZero (the level's zero point), so padding and missing channels (past C_in) contribute 0.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "qconv_microkernel.h"
#include "qconv_params.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

// Packs p.weight into p.packed (layout of qconv_params.h) and writes the per-(channel, tap) sums p.wsum.
// Throws std::invalid_argument for a weight of -128 (the micro-kernels need symmetric weights).
inline void qconv_pack_weights(const QConvPackParams& p) {
  if (p.C_out < 1 || p.C_in < 1 || (p.K != 1 && p.K != 3) || !p.weight || !p.packed || !p.wsum)
    throw std::invalid_argument("anycost: qconv_pack: bad parameters (empty weight, K not 1 or 3, or null)");
  const int64_t taps = int64_t(p.K) * p.K;
  const int64_t tiles = qconv_out_tiles(p.C_out), groups = qconv_in_groups(p.C_in);
  std::fill(p.wsum, p.wsum + p.C_out * taps, 0);
  int8_t* d = p.packed;
  for (int64_t tile = 0; tile < tiles; ++tile)
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t m = 0; m < kQPackMR; ++m)
          for (int64_t c = 0; c < kQGroup; ++c, ++d) {
            const int64_t o = tile * kQPackMR + m, i = g * kQGroup + c;
            *d = 0;
            if (o >= p.C_out || i >= p.C_in) continue;
            const int8_t v = p.weight[o * p.w_so + i * p.w_si + (t / p.K) * p.w_sh + (t % p.K) * p.w_sw];
            if (v < -kQMax)
              throw std::invalid_argument("anycost: int8 conv weights must lie in [-127, 127]; weight[" +
                                          std::to_string(o) + ", " + std::to_string(i) + "] holds " +
                                          std::to_string(int(v)));
            *d = v;
            p.wsum[o * taps + t] += v;
          }
}

// One quantised value: clamp(round_half_even(v), -127, 127) + kQActZero, as the byte stored. NaN
// gives -127, as the vector code (max then min, each returning the bound when unordered).
ANYCOST_INLINE uint32_t quantize_one(float v) {
  v = v > -float(kQMax) ? v : -float(kQMax);
  v = v < float(kQMax) ? v : float(kQMax);
  return static_cast<uint32_t>(static_cast<int32_t>(std::nearbyint(v)) + kQActZero) & 0xFFu;
}

// Quantises positions [x0, W) of one image row of the (up to) 4 channels src[c] (nullptr: a channel
// past C_in, stored as zero) into dst[x] (32-bit words, byte c = channel c): round(src[c][x*sw] *
// mult[c]). The default rounding mode (to nearest, ties to even) is assumed, as everywhere in torch.
inline void quantize_row4_scalar(uint32_t* dst, const float* const src[kQGroup], const float mult[kQGroup],
                                 int64_t sw, int64_t x0, int64_t W) {
  for (int64_t x = x0; x < W; ++x) {
    uint32_t word = 0;
    for (int c = 0; c < kQGroup; ++c)
      word |= (src[c] ? quantize_one(src[c][x * sw] * mult[c]) : uint32_t(kQActZero)) << (8 * c);
    dst[x] = word;
  }
}

#if ANYCOST_CPU_AVX512
// 16 positions of channel c, quantised and shifted into byte c of each 32-bit lane.
ANYCOST_INLINE __m512i quantize_lane16(const float* src, float mult, int c, __mmask16 k) {
  if (!src) return _mm512_set1_epi32(kQActZero << (8 * c));
  __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, src), _mm512_set1_ps(mult));
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-float(kQMax))), _mm512_set1_ps(float(kQMax)));
  const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(kQActZero));
  return _mm512_slli_epi32(_mm512_and_si512(q, _mm512_set1_epi32(0xFF)), 8 * c);
}
#elif ANYCOST_CPU_AVX2
ANYCOST_INLINE __m256i quantize_lane8(const float* src, float mult, int c) {
  if (!src) return _mm256_set1_epi32(kQActZero << (8 * c));
  __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src), _mm256_set1_ps(mult));
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-float(kQMax))), _mm256_set1_ps(float(kQMax)));
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(kQActZero));
  return _mm256_slli_epi32(_mm256_and_si256(q, _mm256_set1_epi32(0xFF)), 8 * c);
}
#endif

// quantize_row4_scalar, vectorised over positions for contiguous rows (sw == 1).
inline void quantize_row4(uint32_t* dst, const float* const src[kQGroup], const float mult[kQGroup],
                          int64_t sw, int64_t W) {
  int64_t x = 0;
  if (sw == 1) {
#if ANYCOST_CPU_AVX512
    for (; x < W; x += 16) {
      const __mmask16 k = W - x >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (W - x)) - 1u);
      __m512i word = _mm512_setzero_si512();
      for (int c = 0; c < kQGroup; ++c)
        word = _mm512_or_si512(word, quantize_lane16(src[c] ? src[c] + x : nullptr, mult[c], c, k));
      _mm512_mask_storeu_epi32(dst + x, k, word);
    }
#elif ANYCOST_CPU_AVX2
    for (; x + 8 <= W; x += 8) {
      __m256i word = _mm256_setzero_si256();
      for (int c = 0; c < kQGroup; ++c)
        word = _mm256_or_si256(word, quantize_lane8(src[c] ? src[c] + x : nullptr, mult[c], c));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + x), word);
    }
#endif
  }
  quantize_row4_scalar(dst, src, mult, sw, x, W);
}

// The quantised plane of sample n, channel group g (layout above) into `plane` (plane_words words;
// everything past the padded grid is zero too). inv_scale = float32(1 / act_scale).
inline void quantize_plane(uint32_t* plane, int64_t plane_words, const QConvParams& p, float inv_scale,
                           int64_t n, int64_t g) {
  const int64_t Wp = p.W + 1;
  const uint32_t zero = uint32_t(kQActZero) * 0x01010101u;
  const float* src[kQGroup];
  float mult[kQGroup];
  for (int c = 0; c < kQGroup; ++c) {
    const int64_t i = g * kQGroup + c;
    src[c] = i < p.C_in ? p.x + n * p.x_sn + i * p.x_sc : nullptr;
    mult[c] = i < p.C_in ? (p.styles ? p.styles[n * p.s_sn + i * p.s_sc] * inv_scale : inv_scale) : 0.f;
  }
  std::fill(plane, plane + Wp, zero);  // row 0 (image row -1)
  for (int64_t y = 0; y < p.H; ++y) {
    uint32_t* row = plane + (y + 1) * Wp;
    row[0] = zero;
    const float* rows[kQGroup];
    for (int c = 0; c < kQGroup; ++c) rows[c] = src[c] ? src[c] + y * p.x_sh : nullptr;
    quantize_row4(row + 1, rows, mult, p.x_sw, p.W);
  }
  std::fill(plane + (p.H + 1) * Wp, plane + plane_words, zero);  // row H + 1 and the slack
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
