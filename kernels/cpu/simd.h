// Tiny fp32 vector abstraction used by the torch-free CPU kernels.
//
// One implementation per instruction-set level (isa.h), in that level's namespace:
//   * avx512:   16 lanes, AVX-512 F/BW/VL/DQ intrinsics (masked loads/stores for partial vectors);
//   * avx2:     8 lanes, AVX2 + FMA intrinsics;
//   * portable: a struct of 8 floats that GCC/Clang auto-vectorise for the baseline ISA
//               (SSE2 on x86-64).
// All give the same results up to fp32 rounding (FMA contraction differs). kVecLen is the lane
// count of the level; the kernels size their strips and tiles from it.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__)
#define ANYCOST_INLINE inline __attribute__((always_inline))
#define ANYCOST_NOINLINE __attribute__((noinline))
#define ANYCOST_RESTRICT __restrict__
#else
#define ANYCOST_INLINE inline
#define ANYCOST_NOINLINE
#define ANYCOST_RESTRICT
#endif

ANYCOST_CPU_NAMESPACE_BEGIN

// Name of the code path compiled in this namespace (for benchmarks / diagnostics).
inline const char* simd_isa_name() {
#if ANYCOST_CPU_AVX512_VNNI
  return "avx512_vnni";
#elif ANYCOST_CPU_AVX512
  return "avx512";
#elif ANYCOST_CPU_AVX2
  return "avx2";
#else
  return "portable";
#endif
}

#if ANYCOST_CPU_AVX512

constexpr int kVecLen = 16;  // fp32 lanes per vector (one zmm register)
struct vfloat {
  __m512 v;
};
ANYCOST_INLINE vfloat vload(const float* p) { return {_mm512_loadu_ps(p)}; }
// kVecLen int32 values, converted to float (rounded to nearest); vload_acc(const float*) is vload.
ANYCOST_INLINE vfloat vload_acc(const int32_t* p) { return {_mm512_cvtepi32_ps(_mm512_loadu_si512(p))}; }
ANYCOST_INLINE void vstore(float* p, vfloat a) { _mm512_storeu_ps(p, a.v); }
// vstore past the caches (a non-temporal store) where p is 64-byte aligned, else vstore; vstream_fence
// orders such stores before the thread's later ones (call it before other threads may read them).
ANYCOST_INLINE void vstore_stream(float* p, vfloat a) {
  if ((reinterpret_cast<uintptr_t>(p) & 63) == 0)
    _mm512_stream_ps(p, a.v);
  else
    _mm512_storeu_ps(p, a.v);
}
ANYCOST_INLINE void vstream_fence() { _mm_sfence(); }
ANYCOST_INLINE vfloat vset1(float x) { return {_mm512_set1_ps(x)}; }
ANYCOST_INLINE vfloat vzero() { return {_mm512_setzero_ps()}; }
ANYCOST_INLINE vfloat vadd(vfloat a, vfloat b) { return {_mm512_add_ps(a.v, b.v)}; }
ANYCOST_INLINE vfloat vsub(vfloat a, vfloat b) { return {_mm512_sub_ps(a.v, b.v)}; }
ANYCOST_INLINE vfloat vmul(vfloat a, vfloat b) { return {_mm512_mul_ps(a.v, b.v)}; }
// a * b + c
ANYCOST_INLINE vfloat vfma(vfloat a, vfloat b, vfloat c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// x > 0 ? x : x * slope   (then the caller multiplies by the gain)
ANYCOST_INLINE vfloat vlrelu(vfloat x, vfloat slope) {
  const __mmask16 gt = _mm512_cmp_ps_mask(x.v, _mm512_setzero_ps(), _CMP_GT_OQ);
  return {_mm512_mask_blend_ps(gt, _mm512_mul_ps(x.v, slope.v), x.v)};
}
// max(m, |x|) per lane
ANYCOST_INLINE vfloat vabsmax(vfloat m, vfloat x) { return {_mm512_max_ps(m.v, _mm512_abs_ps(x.v))}; }
// Interleave a = [a0..a15], b = [b0..b15] into lo = [a0 b0 .. a7 b7], hi = [a8 b8 .. a15 b15].
ANYCOST_INLINE void vinterleave(vfloat a, vfloat b, vfloat& lo, vfloat& hi) {
  const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  lo.v = _mm512_permutex2var_ps(a.v, il, b.v);
  hi.v = _mm512_permutex2var_ps(a.v, ih, b.v);
}
// The inverse: a = [a0..a15], b = [b0..b15] into even = [a0 a2 .. a14 b0 .. b14], odd = [a1 .. b15].
ANYCOST_INLINE void vdeinterleave(vfloat a, vfloat b, vfloat& even, vfloat& odd) {
  const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  even.v = _mm512_permutex2var_ps(a.v, ie, b.v);
  odd.v = _mm512_permutex2var_ps(a.v, io, b.v);
}
ANYCOST_INLINE __mmask16 vmask(int n) {
  return n >= kVecLen ? __mmask16(0xFFFF) : __mmask16((1u << (n > 0 ? n : 0)) - 1u);
}
// Store the first n (0 < n <= kVecLen) lanes of a vector.
ANYCOST_INLINE void vstore_n(float* p, vfloat a, int n) { _mm512_mask_storeu_ps(p, vmask(n), a.v); }
// Load the first n lanes (rest zero) from p.
ANYCOST_INLINE vfloat vload_n(const float* p, int n) { return {_mm512_maskz_loadu_ps(vmask(n), p)}; }
// The first n lanes of a (the rest zero).
ANYCOST_INLINE vfloat vfirst_n(vfloat a, int n) { return {_mm512_maskz_mov_ps(vmask(n), a.v)}; }
// Lane k from b where bit k of take_b is set, else from a.
ANYCOST_INLINE vfloat vblend(vfloat a, vfloat b, unsigned take_b) {
  return {_mm512_mask_blend_ps(static_cast<__mmask16>(take_b), a.v, b.v)};
}
// The sum of a's lanes in double, halving pairwise: lanes k and k + kVecLen / 2 first, then those sums' halves.
ANYCOST_INLINE double vsum_lanes_f64(vfloat a) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a.v));
  const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  const __m512d s8 = _mm512_add_pd(lo, hi);
  const __m256d s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd(s8, 1));
  const __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

#elif ANYCOST_CPU_AVX2

constexpr int kVecLen = 8;  // fp32 lanes per vector (one ymm register)
struct vfloat {
  __m256 v;
};
ANYCOST_INLINE vfloat vload(const float* p) { return {_mm256_loadu_ps(p)}; }
// kVecLen int32 values, converted to float (rounded to nearest); vload_acc(const float*) is vload.
ANYCOST_INLINE vfloat vload_acc(const int32_t* p) {
  return {_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
ANYCOST_INLINE void vstore(float* p, vfloat a) { _mm256_storeu_ps(p, a.v); }
// vstore past the caches (a non-temporal store) where p is 32-byte aligned, else vstore; vstream_fence
// orders such stores before the thread's later ones (call it before other threads may read them).
ANYCOST_INLINE void vstore_stream(float* p, vfloat a) {
  if ((reinterpret_cast<uintptr_t>(p) & 31) == 0)
    _mm256_stream_ps(p, a.v);
  else
    _mm256_storeu_ps(p, a.v);
}
ANYCOST_INLINE void vstream_fence() { _mm_sfence(); }
ANYCOST_INLINE vfloat vset1(float x) { return {_mm256_set1_ps(x)}; }
ANYCOST_INLINE vfloat vzero() { return {_mm256_setzero_ps()}; }
ANYCOST_INLINE vfloat vadd(vfloat a, vfloat b) { return {_mm256_add_ps(a.v, b.v)}; }
ANYCOST_INLINE vfloat vsub(vfloat a, vfloat b) { return {_mm256_sub_ps(a.v, b.v)}; }
ANYCOST_INLINE vfloat vmul(vfloat a, vfloat b) { return {_mm256_mul_ps(a.v, b.v)}; }
// a * b + c
ANYCOST_INLINE vfloat vfma(vfloat a, vfloat b, vfloat c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
// x > 0 ? x : x * slope   (then the caller multiplies by the gain)
ANYCOST_INLINE vfloat vlrelu(vfloat x, vfloat slope) {
  __m256 neg = _mm256_mul_ps(x.v, slope.v);
  __m256 gt = _mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ);
  return {_mm256_blendv_ps(neg, x.v, gt)};
}
// max(m, |x|) per lane
ANYCOST_INLINE vfloat vabsmax(vfloat m, vfloat x) {
  return {_mm256_max_ps(m.v, _mm256_andnot_ps(_mm256_set1_ps(-0.f), x.v))};
}
// Interleave a = [a0..a7], b = [b0..b7] into lo = [a0 b0 .. a3 b3], hi = [a4 b4 .. a7 b7].
ANYCOST_INLINE void vinterleave(vfloat a, vfloat b, vfloat& lo, vfloat& hi) {
  __m256 l = _mm256_unpacklo_ps(a.v, b.v);  // a0 b0 a1 b1 | a4 b4 a5 b5
  __m256 h = _mm256_unpackhi_ps(a.v, b.v);  // a2 b2 a3 b3 | a6 b6 a7 b7
  lo.v = _mm256_permute2f128_ps(l, h, 0x20);
  hi.v = _mm256_permute2f128_ps(l, h, 0x31);
}
// The inverse: a = [a0..a7], b = [b0..b7] into even = [a0 a2 a4 a6 b0 b2 b4 b6], odd = [a1 .. b7].
ANYCOST_INLINE void vdeinterleave(vfloat a, vfloat b, vfloat& even, vfloat& odd) {
  const __m256 e = _mm256_shuffle_ps(a.v, b.v, 0x88);  // a0 a2 b0 b2 | a4 a6 b4 b6
  const __m256 o = _mm256_shuffle_ps(a.v, b.v, 0xDD);  // a1 a3 b1 b3 | a5 a7 b5 b7
  even.v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
  odd.v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8));
}
// Lane k from b where bit k of take_b is set, else from a.
ANYCOST_INLINE vfloat vblend(vfloat a, vfloat b, unsigned take_b) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i take = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(take_b)), bit), bit);
  return {_mm256_blendv_ps(a.v, b.v, _mm256_castsi256_ps(take))};
}
// The sum of a's lanes in double, halving pairwise: lanes k and k + kVecLen / 2 first, then those sums' halves.
ANYCOST_INLINE double vsum_lanes_f64(vfloat a) {
  const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a.v));
  const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a.v, 1));
  const __m256d s4 = _mm256_add_pd(lo, hi);
  const __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

#else  // portable

constexpr int kVecLen = 8;  // fp32 lanes per vector (auto-vectorised)
struct vfloat {
  float v[kVecLen];
};
ANYCOST_INLINE vfloat vload(const float* p) {
  vfloat r;
  for (int k = 0; k < kVecLen; ++k) r.v[k] = p[k];
  return r;
}
ANYCOST_INLINE void vstore(float* p, vfloat a) {
  for (int k = 0; k < kVecLen; ++k) p[k] = a.v[k];
}
// The portable level has no non-temporal store: vstore, and no fence to make.
ANYCOST_INLINE void vstore_stream(float* p, vfloat a) { vstore(p, a); }
ANYCOST_INLINE void vstream_fence() {}
// kVecLen int32 values, converted to float (rounded to nearest); vload_acc(const float*) is vload.
ANYCOST_INLINE vfloat vload_acc(const int32_t* p) {
  vfloat r;
  for (int k = 0; k < kVecLen; ++k) r.v[k] = static_cast<float>(p[k]);
  return r;
}
ANYCOST_INLINE vfloat vset1(float x) {
  vfloat r;
  for (int k = 0; k < kVecLen; ++k) r.v[k] = x;
  return r;
}
ANYCOST_INLINE vfloat vzero() { return vset1(0.f); }
ANYCOST_INLINE vfloat vadd(vfloat a, vfloat b) {
  for (int k = 0; k < kVecLen; ++k) a.v[k] += b.v[k];
  return a;
}
ANYCOST_INLINE vfloat vsub(vfloat a, vfloat b) {
  for (int k = 0; k < kVecLen; ++k) a.v[k] -= b.v[k];
  return a;
}
ANYCOST_INLINE vfloat vmul(vfloat a, vfloat b) {
  for (int k = 0; k < kVecLen; ++k) a.v[k] *= b.v[k];
  return a;
}
ANYCOST_INLINE vfloat vfma(vfloat a, vfloat b, vfloat c) {
  for (int k = 0; k < kVecLen; ++k) c.v[k] += a.v[k] * b.v[k];
  return c;
}
ANYCOST_INLINE vfloat vlrelu(vfloat x, vfloat slope) {
  for (int k = 0; k < kVecLen; ++k) x.v[k] = x.v[k] > 0.f ? x.v[k] : x.v[k] * slope.v[k];
  return x;
}
ANYCOST_INLINE vfloat vabsmax(vfloat m, vfloat x) {
  for (int k = 0; k < kVecLen; ++k) m.v[k] = std::max(m.v[k], std::fabs(x.v[k]));
  return m;
}
ANYCOST_INLINE void vinterleave(vfloat a, vfloat b, vfloat& lo, vfloat& hi) {
  for (int k = 0; k < kVecLen / 2; ++k) {
    lo.v[2 * k] = a.v[k];
    lo.v[2 * k + 1] = b.v[k];
    hi.v[2 * k] = a.v[k + kVecLen / 2];
    hi.v[2 * k + 1] = b.v[k + kVecLen / 2];
  }
}
ANYCOST_INLINE void vdeinterleave(vfloat a, vfloat b, vfloat& even, vfloat& odd) {
  for (int k = 0; k < kVecLen / 2; ++k) {
    even.v[k] = a.v[2 * k];
    odd.v[k] = a.v[2 * k + 1];
    even.v[k + kVecLen / 2] = b.v[2 * k];
    odd.v[k + kVecLen / 2] = b.v[2 * k + 1];
  }
}
// Lane k from b where bit k of take_b is set, else from a.
ANYCOST_INLINE vfloat vblend(vfloat a, vfloat b, unsigned take_b) {
  for (int k = 0; k < kVecLen; ++k)
    if (take_b >> k & 1u) a.v[k] = b.v[k];
  return a;
}
// The sum of a's lanes in double, halving pairwise: lanes k and k + kVecLen / 2 first, then those sums' halves.
ANYCOST_INLINE double vsum_lanes_f64(vfloat a) {
  double s[kVecLen];
  for (int k = 0; k < kVecLen; ++k) s[k] = a.v[k];
  for (int half = kVecLen / 2; half >= 1; half /= 2)
    for (int k = 0; k < half; ++k) s[k] += s[k + half];
  return s[0];
}

#endif

#if !ANYCOST_CPU_AVX512
// Store the first n (0 < n <= kVecLen) lanes of a vector.
ANYCOST_INLINE void vstore_n(float* p, vfloat a, int n) {
  if (n >= kVecLen) {
    vstore(p, a);
    return;
  }
  alignas(64) float tmp[kVecLen];
  vstore(tmp, a);
  for (int k = 0; k < n; ++k) p[k] = tmp[k];
}

// Load the first n lanes (rest zero) from p.
ANYCOST_INLINE vfloat vload_n(const float* p, int n) {
  if (n >= kVecLen) return vload(p);
  alignas(64) float tmp[kVecLen] = {};
  for (int k = 0; k < n; ++k) tmp[k] = p[k];
  return vload(tmp);
}

// The first n lanes of a (the rest zero).
ANYCOST_INLINE vfloat vfirst_n(vfloat a, int n) {
  if (n >= kVecLen) return a;
  alignas(64) float tmp[kVecLen];
  vstore(tmp, a);
  return vload_n(tmp, n);
}
#endif

// The accumulators of a conv tile as fp32: the fp32 convs' as they are (the int8 conv's: see above).
ANYCOST_INLINE vfloat vload_acc(const float* p) { return vload(p); }

// The largest lane of a vector.
ANYCOST_INLINE float vhmax(vfloat a) {
  alignas(64) float t[kVecLen];
  vstore(t, a);
  float m = t[0];
  for (int k = 1; k < kVecLen; ++k) m = std::max(m, t[k]);
  return m;
}

// lane_bitrev[j]: j with its log2(kVecLen) bits reversed, the lane order of vsum_lanes.
struct LaneBitrev {
  int at[kVecLen];
  constexpr LaneBitrev() : at() {
    for (int j = 0; j < kVecLen; ++j)
      for (int b = 1, k = j; b < kVecLen; b <<= 1, k >>= 1) at[j] = (at[j] << 1) | (k & 1);
  }
  constexpr int operator[](int j) const { return at[j]; }
};
inline constexpr LaneBitrev lane_bitrev{};

// The lane sums of kVecLen vectors a[0..kVecLen) in one vector (a is overwritten): lane j holds the sum of the
// lanes of a[lane_bitrev[j]]. A tree of kVecLen - 1 vinterleave + vadd steps (each pair's lanes k and k + kVecLen / 2
// added), against kVecLen horizontal sums of log2(kVecLen) shuffles each.
ANYCOST_INLINE vfloat vsum_lanes(vfloat* a) {
  for (int n = kVecLen; n > 1; n /= 2)
    for (int i = 0; i < n / 2; ++i) {
      vfloat lo, hi;
      vinterleave(a[2 * i], a[2 * i + 1], lo, hi);
      a[i] = vadd(lo, hi);
    }
  return a[0];
}

// Scalar leaky ReLU matching vlrelu.
ANYCOST_INLINE float slrelu(float x, float slope) { return x > 0.f ? x : x * slope; }

// Load n lanes from a strided row (stride in floats), rest zero.
ANYCOST_INLINE vfloat vload_strided(const float* p, int64_t stride, int n) {
  if (stride == 1) return vload_n(p, n);
  alignas(64) float tmp[kVecLen] = {};
  for (int k = 0; k < n && k < kVecLen; ++k) tmp[k] = p[k * stride];
  return vload(tmp);
}

// Store n lanes to a strided row.
ANYCOST_INLINE void vstore_strided(float* p, int64_t stride, vfloat a, int n) {
  if (stride == 1) {
    vstore_n(p, a, n);
    return;
  }
  alignas(64) float tmp[kVecLen];
  vstore(tmp, a);
  for (int k = 0; k < n && k < kVecLen; ++k) p[k * stride] = tmp[k];
}

// bf16 <-> fp32. bf16 is the upper half of an fp32; rounding is to nearest, ties to even (as torch's
// conversion), and a NaN stays a (quiet) NaN.
ANYCOST_INLINE float bf16_to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
ANYCOST_INLINE uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if (f != f) return uint16_t((bits >> 16) | 0x40u);
  return uint16_t((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// The first n (0 < n <= kVecLen) bf16 values at p as fp32 lanes (the rest zero), and the reverse.
#if ANYCOST_CPU_AVX512
ANYCOST_INLINE vfloat vload_bf16(const uint16_t* p, int n) {
  const __m256i h = _mm256_maskz_loadu_epi16(vmask(n), p);
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
// a rounded to bf16 (its lower 16 bits zero), kept as fp32 lanes; a NaN stays a quiet NaN.
ANYCOST_INLINE vfloat vround_bf16(vfloat a) {
  const __m512i bits = _mm512_castps_si512(a.v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __mmask16 nan = _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, bits, _mm512_set1_epi32(0x400000));
  return {_mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(int(0xFFFF0000u))))};
}
ANYCOST_INLINE void vstore_bf16(uint16_t* p, vfloat a, int n) {
  const __m512i r = _mm512_srli_epi32(_mm512_castps_si512(vround_bf16(a).v), 16);
  _mm256_mask_storeu_epi16(p, vmask(n), _mm512_cvtepi32_epi16(r));
}
#elif ANYCOST_CPU_AVX2
ANYCOST_INLINE vfloat vload_bf16(const uint16_t* p, int n) {
  __m128i h;
  if (n >= kVecLen) {
    h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  } else {
    alignas(16) uint16_t tmp[kVecLen] = {};
    for (int k = 0; k < n; ++k) tmp[k] = p[k];
    h = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
  }
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
}
// a rounded to bf16 (its lower 16 bits zero), kept as fp32 lanes; a NaN stays a quiet NaN.
ANYCOST_INLINE vfloat vround_bf16(vfloat a) {
  const __m256i bits = _mm256_castps_si256(a.v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF)));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_or_si256(bits, _mm256_set1_epi32(0x400000)), nan);
  return {_mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(int(0xFFFF0000u))))};
}
ANYCOST_INLINE void vstore_bf16(uint16_t* p, vfloat a, int n) {
  const __m256i r = _mm256_srli_epi32(_mm256_castps_si256(vround_bf16(a).v), 16);
  // 32-bit lanes (each < 2^16) to 16 bits: packus works per 128-bit half, the permute joins the halves.
  const __m128i h = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
  if (n >= kVecLen) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
    return;
  }
  alignas(16) uint16_t tmp[kVecLen];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), h);
  for (int k = 0; k < n; ++k) p[k] = tmp[k];
}
#else
ANYCOST_INLINE vfloat vload_bf16(const uint16_t* p, int n) {
  vfloat r;
  for (int k = 0; k < kVecLen; ++k) r.v[k] = k < n ? bf16_to_float(p[k]) : 0.f;
  return r;
}
ANYCOST_INLINE void vstore_bf16(uint16_t* p, vfloat a, int n) {
  for (int k = 0; k < n && k < kVecLen; ++k) p[k] = float_to_bf16(a.v[k]);
}
// a rounded to bf16 (its lower 16 bits zero), kept as fp32 lanes; a NaN stays a quiet NaN.
ANYCOST_INLINE vfloat vround_bf16(vfloat a) {
  for (int k = 0; k < kVecLen; ++k) a.v[k] = bf16_to_float(float_to_bf16(a.v[k]));
  return a;
}
#endif

ANYCOST_CPU_NAMESPACE_END
