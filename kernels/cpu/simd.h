// Tiny 8-lane fp32 vector abstraction used by the torch-free CPU kernels.
//
// Two implementations selected at compile time:
//   * AVX2 + FMA intrinsics when the compiler targets them (-mavx2 -mfma or
//     -march=native on such a CPU), unless ANYCOST_CPU_FORCE_SCALAR is defined;
//   * a portable struct-of-8-floats fallback that GCC/Clang auto-vectorise
//     for whatever ISA the build targets (SSE2 at least on x86-64).
// Both give the same results up to fp32 rounding (FMA contraction differs).
//
// The vector width is 8 lanes on every ISA: the kernels' register blocking
// (conv_microkernel.h) is laid out for it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if !defined(ANYCOST_CPU_FORCE_SCALAR) && defined(__AVX2__) && defined(__FMA__)
#define ANYCOST_CPU_AVX2 1
#include <immintrin.h>
#else
#define ANYCOST_CPU_AVX2 0
#endif

#if defined(__GNUC__)
#define ANYCOST_INLINE inline __attribute__((always_inline))
#define ANYCOST_NOINLINE __attribute__((noinline))
#define ANYCOST_RESTRICT __restrict__
#else
#define ANYCOST_INLINE inline
#define ANYCOST_NOINLINE
#define ANYCOST_RESTRICT
#endif

namespace anycost {
namespace cpu {

constexpr int kVecLen = 8;  // fp32 lanes per vector (one AVX2 register)

// Name of the code path that was compiled in (for benchmarks / diagnostics).
inline const char* simd_isa_name() {
#if ANYCOST_CPU_AVX2
  return "avx2+fma";
#else
  return "portable";
#endif
}

#if ANYCOST_CPU_AVX2

struct vf8 {
  __m256 v;
};
ANYCOST_INLINE vf8 vload(const float* p) { return {_mm256_loadu_ps(p)}; }
ANYCOST_INLINE void vstore(float* p, vf8 a) { _mm256_storeu_ps(p, a.v); }
ANYCOST_INLINE vf8 vset1(float x) { return {_mm256_set1_ps(x)}; }
ANYCOST_INLINE vf8 vzero() { return {_mm256_setzero_ps()}; }
ANYCOST_INLINE vf8 vadd(vf8 a, vf8 b) { return {_mm256_add_ps(a.v, b.v)}; }
ANYCOST_INLINE vf8 vmul(vf8 a, vf8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
// a * b + c
ANYCOST_INLINE vf8 vfma(vf8 a, vf8 b, vf8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
// x > 0 ? x : x * slope   (then the caller multiplies by the gain)
ANYCOST_INLINE vf8 vlrelu(vf8 x, vf8 slope) {
  __m256 neg = _mm256_mul_ps(x.v, slope.v);
  __m256 gt = _mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ);
  return {_mm256_blendv_ps(neg, x.v, gt)};
}
// Interleave a = [a0..a7], b = [b0..b7] into lo = [a0 b0 .. a3 b3], hi = [a4 b4 .. a7 b7].
ANYCOST_INLINE void vinterleave(vf8 a, vf8 b, vf8& lo, vf8& hi) {
  __m256 l = _mm256_unpacklo_ps(a.v, b.v);  // a0 b0 a1 b1 | a4 b4 a5 b5
  __m256 h = _mm256_unpackhi_ps(a.v, b.v);  // a2 b2 a3 b3 | a6 b6 a7 b7
  lo.v = _mm256_permute2f128_ps(l, h, 0x20);
  hi.v = _mm256_permute2f128_ps(l, h, 0x31);
}

#else  // portable fallback

struct vf8 {
  float v[kVecLen];
};
ANYCOST_INLINE vf8 vload(const float* p) {
  vf8 r;
  for (int k = 0; k < kVecLen; ++k) r.v[k] = p[k];
  return r;
}
ANYCOST_INLINE void vstore(float* p, vf8 a) {
  for (int k = 0; k < kVecLen; ++k) p[k] = a.v[k];
}
ANYCOST_INLINE vf8 vset1(float x) {
  vf8 r;
  for (int k = 0; k < kVecLen; ++k) r.v[k] = x;
  return r;
}
ANYCOST_INLINE vf8 vzero() { return vset1(0.f); }
ANYCOST_INLINE vf8 vadd(vf8 a, vf8 b) {
  for (int k = 0; k < kVecLen; ++k) a.v[k] += b.v[k];
  return a;
}
ANYCOST_INLINE vf8 vmul(vf8 a, vf8 b) {
  for (int k = 0; k < kVecLen; ++k) a.v[k] *= b.v[k];
  return a;
}
ANYCOST_INLINE vf8 vfma(vf8 a, vf8 b, vf8 c) {
  for (int k = 0; k < kVecLen; ++k) c.v[k] += a.v[k] * b.v[k];
  return c;
}
ANYCOST_INLINE vf8 vlrelu(vf8 x, vf8 slope) {
  for (int k = 0; k < kVecLen; ++k) x.v[k] = x.v[k] > 0.f ? x.v[k] : x.v[k] * slope.v[k];
  return x;
}
ANYCOST_INLINE void vinterleave(vf8 a, vf8 b, vf8& lo, vf8& hi) {
  for (int k = 0; k < 4; ++k) {
    lo.v[2 * k] = a.v[k];
    lo.v[2 * k + 1] = b.v[k];
    hi.v[2 * k] = a.v[k + 4];
    hi.v[2 * k + 1] = b.v[k + 4];
  }
}

#endif

// Scalar leaky ReLU matching vlrelu.
ANYCOST_INLINE float slrelu(float x, float slope) { return x > 0.f ? x : x * slope; }

// Store the first n (0 < n <= 8) lanes of a vector.
ANYCOST_INLINE void vstore_n(float* p, vf8 a, int n) {
  if (n >= kVecLen) {
    vstore(p, a);
    return;
  }
  alignas(32) float tmp[kVecLen];
  vstore(tmp, a);
  for (int k = 0; k < n; ++k) p[k] = tmp[k];
}

// Load the first n lanes (rest zero) from p.
ANYCOST_INLINE vf8 vload_n(const float* p, int n) {
  if (n >= kVecLen) return vload(p);
  alignas(32) float tmp[kVecLen] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < n; ++k) tmp[k] = p[k];
  return vload(tmp);
}

// Load n lanes from a strided row (stride in floats), rest zero.
ANYCOST_INLINE vf8 vload_strided(const float* p, int64_t stride, int n) {
  if (stride == 1) return vload_n(p, n);
  alignas(32) float tmp[kVecLen] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < n && k < kVecLen; ++k) tmp[k] = p[k * stride];
  return vload(tmp);
}

// Store n lanes to a strided row.
ANYCOST_INLINE void vstore_strided(float* p, int64_t stride, vf8 a, int n) {
  if (stride == 1) {
    vstore_n(p, a, n);
    return;
  }
  alignas(32) float tmp[kVecLen];
  vstore(tmp, a);
  for (int k = 0; k < n && k < kVecLen; ++k) p[k * stride] = tmp[k];
}

}  // namespace cpu
}  // namespace anycost
