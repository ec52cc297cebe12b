// Register-blocked direct-convolution micro-kernel.
//
// Layout trick ("flattened padded rows"): the input tile of every channel is
// stored as rows of pitch Wp (with the zero padding column shared between
// the right edge of one row and the left edge of the next), so for every
// output position g of the tile and every filter tap the input sits at the
// constant offset g + ky*row_step + kx*CS. A strip of V = kVecLen*NR consecutive
// positions is therefore one contiguous (unaligned) load per vector, for
// every tap, whatever the image width; the few positions that land on the
// padding column are computed and discarded by the epilogue.
//
// One call computes an MR (output channels) x V (positions) block:
//
//   acc[m][g + v] (+)= sum_{i < kc} sum_{ky < KH, kx < KW}
//                        w[i*w_is + (ky*KW + kx)*MR + m] * x[i*x_cs + g + v + ky*row_step + kx*CS]
//
// Register budget: MR*NR accumulators + NR input vectors + 1 broadcast weight
// (16 ymm with AVX2, 32 zmm with AVX-512). AVX2: MR=4, NR=3 uses all 16 and gives 12 independent FMA
// chains (Zen 2 needs >= 10 to hide the 5-cycle FMA latency on 2 pipes) at
// 7 loads per 12 FMAs. With L1-resident data one Zen 2 core (peak 107
// GFLOP/s) runs 4x3 at 102-107 GFLOP/s for every tap shape (3x3, 2x2, 2x1,
// 1x2, 1x1); 6x2 is as fast, 8x1 reaches 84 and 3x4 62. The weights are pre-packed as [i][tap][MR] (times the
// style), so the broadcasts walk one contiguous stream.
//
// The same kernel serves the 3x3 conv (KH=KW=3, row_step=+Wp, CS=+1), the
// 1x1 conv (KH=KW=1) and the four sub-pixel phases of the stride-2
// transposed conv (2x2, 2x1, 1x2 and 1x1 taps with row_step=-Wp, CS=-1).
#pragma once

#include "isa.h"

#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

#if ANYCOST_CPU_AVX2
// c += a * b, pinned to the accumulating (231) form through inline asm where
// the compiler supports it: with plain intrinsics GCC 12 rotates the
// accumulators between registers in the short 1- and 2-tap phase kernels and
// spills one of them (67 instead of 100+ GFLOP/s with AVX2). The AVX-512 form
// uses the "v" constraint: all 32 zmm registers.
ANYCOST_INLINE void fma_acc(vfloat& c, vfloat a, vfloat b) {
#if defined(__GNUC__) && !defined(ANYCOST_NO_INLINE_ASM)
#if ANYCOST_CPU_AVX512
  __asm__("vfmadd231ps %[a], %[b], %[c]" : [c] "+v"(c.v) : [a] "v"(a.v), [b] "v"(b.v));
#else
  __asm__("vfmadd231ps %[a], %[b], %[c]" : [c] "+x"(c.v) : [a] "x"(a.v), [b] "x"(b.v));
#endif
#else
  c = vfma(a, b, c);
#endif
}
#endif

// Kept out of line on purpose: inlined into the (large) drivers, GCC 12 stops
// scalarising the accumulator array and keeps it on the stack (measured 44%
// instead of 70%+ of peak). A call per micro-tile costs nothing measurable.
// One strip is V = kVecLen * NR positions.
template <int MR, int NR, int KH, int KW, int CS>
ANYCOST_NOINLINE void conv_ukernel(const float* ANYCOST_RESTRICT w, int64_t w_is,
                                 const float* ANYCOST_RESTRICT x, int64_t x_cs, int64_t row_step,
                                 int64_t kc, float* ANYCOST_RESTRICT acc, int64_t acc_ld,
                                 bool accumulate) {
#if ANYCOST_CPU_AVX2
  vfloat c[MR][NR];
  if (accumulate) {
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) c[m][j] = vload(acc + m * acc_ld + kVecLen * j);
  } else {
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) c[m][j] = vzero();
  }
  for (int64_t i = 0; i < kc; ++i) {
    const float* xi = x + i * x_cs;
    const float* wi = w + i * w_is;
#pragma GCC unroll 3
    for (int ky = 0; ky < KH; ++ky) {
      const float* xr = xi + ky * row_step;
#pragma GCC unroll 3
      for (int kx = 0; kx < KW; ++kx) {
        vfloat a[NR];
#pragma GCC unroll 16
        for (int j = 0; j < NR; ++j) a[j] = vload(xr + kx * CS + kVecLen * j);
        const float* wt = wi + (ky * KW + kx) * MR;
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          const vfloat b = vset1(wt[m]);
#pragma GCC unroll 16
          for (int j = 0; j < NR; ++j) fma_acc(c[m][j], a[j], b);
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) vstore(acc + m * acc_ld + kVecLen * j, c[m][j]);
#else
  // Portable version: same blocking, plain loops the compiler can vectorise
  // along the V = kVecLen*NR positions.
  constexpr int V = kVecLen * NR;
  float c[MR][V];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < V; ++v) c[m][v] = accumulate ? acc[m * acc_ld + v] : 0.f;
  for (int64_t i = 0; i < kc; ++i) {
    const float* xi = x + i * x_cs;
    const float* wi = w + i * w_is;
    for (int ky = 0; ky < KH; ++ky) {
      for (int kx = 0; kx < KW; ++kx) {
        const float* xt = xi + ky * row_step + kx * CS;
        const float* wt = wi + (ky * KW + kx) * MR;
        for (int m = 0; m < MR; ++m) {
          const float b = wt[m];
          for (int v = 0; v < V; ++v) c[m][v] += b * xt[v];
        }
      }
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < V; ++v) acc[m * acc_ld + v] = c[m][v];
#endif
}

ANYCOST_CPU_NAMESPACE_END
