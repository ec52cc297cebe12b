// Register-blocked int8 direct-convolution micro-kernel (int32 accumulation).
//
// Same scheme as the fp32 conv_ukernel (conv_microkernel.h): vector lanes are output *positions* of
// the "flattened padded rows" layout (row pitch Wp = W + 1, one shared zero column), so every tap of
// every position is a constant offset and the accumulator tile comes out per output channel, in the
// NCHW order the epilogue writes. What changes is that a 32-bit lane holds kQGroup = 4 input
// channels of one position (the packed activations are [group][position][4] bytes, see
// qconv_pack.h), and the broadcast operand is the 32-bit word of the 4 matching weights of one output
// channel (packed [group][tap][8 channels][4], qconv_params.h). One dot-product step multiplies
// lanes x 4 channels by the 4 weights and adds the 4 products to the int32 lane:
//
//   acc[m][g + v] (+)= sum_{groups, ky, kx} sum_{c < 4} w[group][ky*KW+kx][m][c] *
//                                            act[group][g + v + ky*row + kx][c]
//
// Per level:
//   * avx512_vnni: vpdpbusd (u8 x s8 -> int32, no intermediate saturation), 16 positions per zmm,
//     8 x 3 tile (24 accumulators + 3 activation vectors + 1 broadcast of the 32 zmm). vpdpbusd needs
//     the activation operand unsigned, so this level's packed activations are u8 = q + 128
//     (kQActZero); the zero point is removed exactly by starting each accumulator at
//     -128 * sum(weights of its channel) (`init`, from the weight packing), and the padding holds 128.
//   * avx2 (also the avx512 level without VNNI, with an 8 x 2 tile in its 32 registers): vpmaddubsw +
//     vpmaddwd, 8 positions per ymm, 4 x 2 tile. vpmaddubsw multiplies u8 by s8 and adds *pairs* into
//     int16 with saturation: u8 activations with zero point 128 reach 255 * 127 * 2 = 64770 and would
//     saturate. So this level keeps the
//     activations signed (kQActZero = 0) and moves their sign onto the weight: |a| (u8 <= 127) times
//     sign(a) * w (s8), |pair| <= 2 * 127 * 127 = 32258 < 32767, never saturates (weights and
//     activations are symmetric, never -128, so neither |a| nor -w overflows a byte). vpmaddwd with
//     ones then adds the pairs into int32. Four instructions per 32 multiply-adds (vpsignb,
//     vpmaddubsw, vpmaddwd, vpaddd); exact.
//   * portable: plain int32 loops (the reference the others must equal bit for bit).
#pragma once

#include "isa.h"

#include <cstdint>
#include <cstring>

#include "qconv_params.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

#if ANYCOST_CPU_AVX512_VNNI
constexpr int kQActZero = 128;  // packed activations are u8 = q + 128
constexpr int kQLanes = 16;     // positions per vector
constexpr int kQMR = 8, kQNR = 3;
#elif ANYCOST_CPU_AVX512
constexpr int kQActZero = 0;  // packed activations are s8 = q
constexpr int kQLanes = 8;
constexpr int kQMR = 8, kQNR = 2;  // the avx2 algorithm in 32 registers (16 accumulators)
#elif ANYCOST_CPU_AVX2
constexpr int kQActZero = 0;  // packed activations are s8 = q
constexpr int kQLanes = 8;
constexpr int kQMR = 4, kQNR = 2;  // 8 accumulators, 2 + 2 activation vectors, ones, broadcast, temp
#else
constexpr int kQActZero = 0;
constexpr int kQLanes = 8;
constexpr int kQMR = 8, kQNR = 2;
#endif
static_assert(kQPackMR % kQMR == 0, "the micro-kernel's rows must tile the packed weight's");

// The 32-bit word of 4 packed weights (unaligned).
ANYCOST_INLINE int32_t load_word(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// c += the accumulation step, pinned to accumulating in c's register through inline asm where the
// compiler supports it: with plain intrinsics GCC 12 defers the avx2 adds to the end of the loop
// body, parking every product on the stack (1.2x fp32 instead of ~2x), and rotates the VNNI
// accumulators between registers. "v": all 32 registers at the AVX-512 levels.
#if ANYCOST_CPU_AVX512_VNNI
ANYCOST_INLINE void dpbusd_acc(__m512i& c, __m512i a_u8, __m512i b_s8) {
#if defined(__GNUC__) && !defined(ANYCOST_NO_INLINE_ASM)
  __asm__("vpdpbusd %[b], %[a], %[c]" : [c] "+v"(c) : [a] "v"(a_u8), [b] "v"(b_s8));
#else
  c = _mm512_dpbusd_epi32(c, a_u8, b_s8);
#endif
}
#elif ANYCOST_CPU_AVX2
ANYCOST_INLINE void add_acc(__m256i& c, __m256i t) {
#if defined(__GNUC__) && !defined(ANYCOST_NO_INLINE_ASM)
#if ANYCOST_CPU_AVX512
  __asm__("vpaddd %[t], %[c], %[c]" : [c] "+v"(c) : [t] "v"(t));
#else
  __asm__("vpaddd %[t], %[c], %[c]" : [c] "+x"(c) : [t] "x"(t));
#endif
#else
  c = _mm256_add_epi32(c, t);
#endif
}
#endif

// One call computes MR output channels x kQLanes*NR positions over a KH x KW block of taps:
//   w:   the packed weight of the first of the MR channels at group 0, first tap (w_gs bytes per
//        group); tap (ky, kx) of the block is packed tap ky * WTY + kx * WTX after it;
//   x:   the packed activations of the first position at group 0, tap (0, 0) (x_gs bytes per group);
//        tap (ky, kx) reads ky * row_step bytes and kx * CS words further;
//   acc: int32 [MR][acc_ld]; starts from init[m] (every position) when init is given, else from acc.
// The 3x3 conv is KH = KW = 3, CS = 1, WTY = 3, WTX = 1; the sub-pixel phases of the stride-2
// transposed conv read their 2x2, 2x1, 1x2 and 1x1 taps backwards (CS = -1, row_step < 0) from every
// other packed tap (WTY = 6, WTX = 2: see qconv_blocked.h).
// Kept out of line for the same reason as conv_ukernel (GCC keeps the accumulators in registers).
template <int MR, int NR, int KH, int KW, int CS = 1, int WTY = KW, int WTX = 1>
ANYCOST_NOINLINE void qconv_ukernel(const int8_t* ANYCOST_RESTRICT w, int64_t w_gs,
                                    const uint8_t* ANYCOST_RESTRICT x, int64_t x_gs, int64_t row_step,
                                    int64_t groups, int32_t* ANYCOST_RESTRICT acc, int64_t acc_ld,
                                    const int32_t* init) {
  constexpr int64_t kTapBytes = kQPackMR * kQGroup;  // one tap of a packed tile
#if ANYCOST_CPU_AVX512_VNNI
  __m512i c[MR][NR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j)
      c[m][j] = init ? _mm512_set1_epi32(init[m]) : _mm512_loadu_si512(acc + m * acc_ld + kQLanes * j);
  for (int64_t gi = 0; gi < groups; ++gi) {
    const uint8_t* xi = x + gi * x_gs;
    const int8_t* wi = w + gi * w_gs;
#pragma GCC unroll 3
    for (int ky = 0; ky < KH; ++ky)
#pragma GCC unroll 3
      for (int kx = 0; kx < KW; ++kx) {
        const uint8_t* xt = xi + ky * row_step + kx * CS * kQGroup;
        __m512i a[NR];
#pragma GCC unroll 16
        for (int j = 0; j < NR; ++j) a[j] = _mm512_loadu_si512(xt + 64 * j);
        const int8_t* wt = wi + (ky * WTY + kx * WTX) * kTapBytes;
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          const __m512i b = _mm512_set1_epi32(load_word(wt + kQGroup * m));
#pragma GCC unroll 16
          for (int j = 0; j < NR; ++j) dpbusd_acc(c[m][j], a[j], b);
        }
      }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) _mm512_storeu_si512(acc + m * acc_ld + kQLanes * j, c[m][j]);
#elif ANYCOST_CPU_AVX2
  __m256i c[MR][NR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j)
      c[m][j] = init ? _mm256_set1_epi32(init[m])
                     : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + m * acc_ld + kQLanes * j));
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t gi = 0; gi < groups; ++gi) {
    const uint8_t* xi = x + gi * x_gs;
    const int8_t* wi = w + gi * w_gs;
#pragma GCC unroll 3
    for (int ky = 0; ky < KH; ++ky)
#pragma GCC unroll 3
      for (int kx = 0; kx < KW; ++kx) {
        const uint8_t* xt = xi + ky * row_step + kx * CS * kQGroup;
        __m256i a[NR], a_abs[NR];
#pragma GCC unroll 16
        for (int j = 0; j < NR; ++j) {
          a[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + 32 * j));
          a_abs[j] = _mm256_abs_epi8(a[j]);
        }
        const int8_t* wt = wi + (ky * WTY + kx * WTX) * kTapBytes;
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          const __m256i b = _mm256_set1_epi32(load_word(wt + kQGroup * m));
#pragma GCC unroll 16
          for (int j = 0; j < NR; ++j) {
            const __m256i pairs = _mm256_maddubs_epi16(a_abs[j], _mm256_sign_epi8(b, a[j]));
            add_acc(c[m][j], _mm256_madd_epi16(pairs, ones));
          }
        }
      }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + m * acc_ld + kQLanes * j), c[m][j]);
#else
  constexpr int V = kQLanes * NR;
  int32_t c[MR][V];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < V; ++v) c[m][v] = init ? init[m] : acc[m * acc_ld + v];
  for (int64_t gi = 0; gi < groups; ++gi) {
    const uint8_t* xi = x + gi * x_gs;
    const int8_t* wi = w + gi * w_gs;
    for (int ky = 0; ky < KH; ++ky)
      for (int kx = 0; kx < KW; ++kx) {
        const int8_t* xt = reinterpret_cast<const int8_t*>(xi + ky * row_step + kx * CS * kQGroup);
        const int8_t* wt = wi + (ky * WTY + kx * WTX) * kTapBytes;
        for (int m = 0; m < MR; ++m) {
          const int8_t* wm = wt + kQGroup * m;
          for (int v = 0; v < V; ++v) {
            const int8_t* xv = xt + kQGroup * v;
            c[m][v] += wm[0] * xv[0] + wm[1] * xv[1] + wm[2] * xv[2] + wm[3] * xv[3];
          }
        }
      }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < V; ++v) acc[m * acc_ld + v] = c[m][v];
#endif
}

ANYCOST_CPU_NAMESPACE_END
