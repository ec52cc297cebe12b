// Small-image path of the fused modulated conv: style on the input, weight
// streamed in place, demodulation as a per-channel factor (see
// modulated_conv_blocked.h for the semantics and the large-image path).
//
// At 4-16 px the large-image path is dominated by its per-task weight packing
// (C_out x C_in x 9 values modulated and repacked per sample: as many memory
// operations as the convolution has MACs per weight, i.e. 16-64) and, for the
// upsampling conv, by its sub-pixel grid, which rounds (H+1) x (W+1) grid
// positions up to strips of 24 (a third of the lanes are useful at 4 px).
// Here, for a group of samples n (the whole batch, up to kSmallGroupPositions
// positions), with s_n = styles[n] and W the (sliced, strided) weight:
//
//   B[i, (n, p)]     = x[n, i, p] * s_n[i]                     (p = y*W + x)
//   Y[(o,t), (n, p)] = sum_i W[o, i, t] * B[i, (n, p)]         (a GEMM, t = tap)
//   conv[n, o]       = col2im(Y[(o, .), (n, .)])               (shifted adds of the K*K taps)
//   d[n, o]          = 1/sqrt(ws^2 sum_i s_n[i]^2 sum_t W[o,i,t]^2 + eps)
//   out[n, o]        = act(ws * d[n, o] * conv[n, o] + noise + bias)   (the usual epilogues)
//
// which is the same function (the style is linear in the input, the
// demodulation a per-output-channel scale). The GEMM computes exactly the
// H*W*C_in*C_out*K*K "true" MACs (rounded up to 16 positions), broadcasting
// the weight straight from its strided view (MR row pointers, one stride per
// input channel): no weight copy at all, each weight value is read once per
// group of samples (at 4-8 px, weight traffic is most of a layer's memory
// traffic: a 512-channel layer reads 9.4 MB of weights for 16-64 positions).
// col2im for the upsampling conv scatters tap (ky, kx) into the sub-pixel phase
// plane (ky&1, kx&1) shifted by (ky>>1, kx>>1): the layout the large path's
// blur epilogue (epilogue_up) reads.
//
// Blocking (per task = group of G samples x block of MC output channels; ld = G * P16):
//   for each block of KC input channels             (B block: KC x ld, L2)
//     pack B (x * s_n), demod sums of squares of the weight block per sample
//     for each group of MR rows (o, t)              (A panel: MR x KC, L1)
//       for each strip of kVecLen*NR positions      (micro-kernel, registers)
//   per channel and sample: col2im + epilogue       (Y: MC*K*K x ld, L2)
//
// Included from modulated_conv_blocked.h (uses its detail::make_epilogue and
// detail::skew_ld), which also picks the path (use_small_path).
#pragma once

#include "isa.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "conv_microkernel.h"  // fma_acc
#include "modconv_epilogue.h"
#include "modconv_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

// Micro-tile: kSmallMR rows (o, t) x kSmallNR vectors (16 positions at every level, so that 4x4
// images waste no more than today's strips). With AVX-512, tasks of 64 positions and more (8 x 8 px, or a group
// of 4 x 4 px samples) take kSmallWideMR x kSmallWideNR: each broadcast weight feeds 4 FMAs instead of 1.
#if ANYCOST_CPU_AVX512
constexpr int kSmallMR = 12;
constexpr int kSmallNR = 1;
constexpr int kSmallWideMR = 6;
constexpr int kSmallWideNR = 4;
#else
constexpr int kSmallMR = 6;
constexpr int kSmallNR = 2;
constexpr int kSmallWideMR = kSmallMR;
constexpr int kSmallWideNR = kSmallNR;
#endif

// c[m][0 .. kVecLen*NR) (+)= sum_{k < kc} a[m][k * aks] * b[k * ldb + 0 .. 8*NR)
// with one pointer per row of A (rows of the strided weight view).
// (Unrolling k with a compile-time aks made GCC 12 spill an accumulator: slower.)
template <int MR, int NR>
ANYCOST_NOINLINE void gemm_rows_ukernel(const float* const* a_rows, int64_t aks,
                                        const float* ANYCOST_RESTRICT b, int64_t ldb, int64_t kc,
                                        float* ANYCOST_RESTRICT c, int64_t ldc, bool accumulate) {
  const float* a[MR];
  for (int m = 0; m < MR; ++m) a[m] = a_rows[m];
#if ANYCOST_CPU_AVX2
  vfloat acc[MR][NR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) acc[m][j] = accumulate ? vload(c + m * ldc + kVecLen * j) : vzero();
  int64_t off = 0;
  for (int64_t k = 0; k < kc; ++k, off += aks) {
    const float* bk = b + k * ldb;
    vfloat x[NR];
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) x[j] = vload(bk + kVecLen * j);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const vfloat w = vset1(a[m][off]);
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) fma_acc(acc[m][j], x[j], w);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) vstore(c + m * ldc + kVecLen * j, acc[m][j]);
#else
  constexpr int V = kVecLen * NR;
  float acc[MR][V];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < V; ++v) acc[m][v] = accumulate ? c[m * ldc + v] : 0.f;
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    for (int m = 0; m < MR; ++m) {
      const float w = a[m][k * aks];
      for (int v = 0; v < V; ++v) acc[m][v] += w * bk[v];
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < V; ++v) c[m * ldc + v] = acc[m][v];
#endif
}

// Positions (samples x rounded image positions) per task at most: the batch shares each weight read up to here
// (16 samples at 8 x 8 px, 64 at 4 x 4); past it, the B blocks (small_b_bytes) would fall under 32-64 input
// channels and Y would be loaded and stored once per few channels.
constexpr int64_t kSmallGroupPositions = 1024;

struct SmallPlan {
  int64_t T;          // taps (K*K)
  int64_t P, P16;     // positions (H*W) and their round-up to the strip width
  int64_t G, n_groups;  // samples per task, groups of the batch
  int64_t ld;         // floats per row of B and Y: G sample segments of P16
  bool wide;          // micro-tile kSmallWideMR x kSmallWideNR, else kSmallMR x kSmallNR
  int64_t KC;         // input channels per block
  int64_t MC, n_ocb;  // output channels per task, blocks
  int64_t rows_p;     // rows of Y per task (MC*T rounded up to MR)
  int64_t Wp;         // phase plane pitch (upsampling)
  int64_t plane;      // floats per plane (col2im target)
  int64_t lead;       // leading zeros of each phase plane
  int64_t tasks;
  size_t ws_bytes;
};

// Whether the small path applies (`force`: -1 auto, 0 never, 1 whenever possible)
// and is expected to beat the large path.
inline bool use_small_path(const ModConvParams& p, int force) {
  if (force == 0) return false;
  if (p.K == 1) return force == 1;  // ToRGB and 1x1: the large path packs only C_out*C_in values
  if (force == 1) return true;
  // Auto (1 Zen 2 core, bench/cpp/bench_modulated_conv --paths): the GEMM needs
  // enough input channels to amortise the col2im adds (K*K per C_in MACs). The
  // upsampling conv wins up to 16x16 px input (4->8 px 512 ch: 2.9 -> 1.3 ms,
  // 16->32: 17 -> 16 ms); the plain conv at 4x4 (1.9 -> 1.2 ms) and, with many
  // channels, at 8x8 (4.3 -> 4.0 ms); at 16x16 the large path is faster. With
  // AVX-512 (Zen 4, 2 threads, two runs, ms large / small) the large path's 8 x 3
  // micro-kernel also takes the upsampling conv from 16x16 px: 16->32 512 ch
  // 7.54-7.55 / 8.21-8.47, 128 ch 0.52-0.53 / 0.56-0.58 (8->16 512 ch: 2.45-2.48 /
  // 2.13-2.16).
  const int64_t P = p.H * p.W;
  if (p.C_in < 32) return false;
#if ANYCOST_CPU_AVX512
  if (p.upsample) return P < 16 * 16;
#else
  if (p.upsample) return P <= 16 * 16;
#endif
  return P <= 4 * 4 || (P <= 8 * 8 && p.C_in >= 256);
}

inline SmallPlan make_small_plan(const ModConvParams& p, const ModConvBlocking& b) {
  SmallPlan pl{};
  constexpr int64_t V = kVecLen * kSmallNR;
  const int64_t nt = std::max(1, b.num_threads);
  pl.T = int64_t(p.K) * p.K;
  pl.P = p.H * p.W;
  pl.P16 = (pl.P + V - 1) / V * V;
  // Groups of samples (an even split of the batch).
  pl.n_groups = ceil_div(p.N, std::max<int64_t>(1, kSmallGroupPositions / pl.P16));
  pl.G = ceil_div(p.N, pl.n_groups);
  pl.ld = pl.G * pl.P16;
  pl.wide = pl.ld >= kVecLen * kSmallWideNR;
  const int64_t MR = pl.wide ? kSmallWideMR : kSmallMR;
  // B block of small_b_bytes (L2), at least 8 channels; even split.
  // (Measured on Zen 2 at 4-16 px: smaller, L1-sized B blocks cost more in
  // accumulator loads/stores than they save; 64-256 KiB B and 96-384 KiB Y are within noise.)
  int64_t kc = std::max<int64_t>(8, b.small_b_bytes / 4 / pl.ld);
  int64_t n_kc = (p.C_in + kc - 1) / kc;
  pl.KC = (p.C_in + n_kc - 1) / n_kc;
  // Y of small_y_bytes (L2); channel blocks a multiple of the thread count over the groups.
  const int64_t mc_max = std::max<int64_t>(1, b.small_y_bytes / 4 / (pl.T * pl.ld));
  int64_t n_ocb = (p.C_out + mc_max - 1) / mc_max;
  const int64_t per = nt / std::gcd<int64_t>(pl.n_groups, nt);  // n_ocb multiple of this balances threads
  n_ocb = std::min(p.C_out, (n_ocb + per - 1) / per * per);
  // MC * T rows in whole micro-tiles where the channels allow (else the last micro-tile of a task repeats its last
  // row in the rows past MC * T).
  const int64_t mc_step = MR / std::gcd<int64_t>(MR, pl.T);
  pl.MC = std::min(round_up(ceil_div(p.C_out, n_ocb), mc_step), p.C_out);
  pl.n_ocb = ceil_div(p.C_out, pl.MC);
  pl.rows_p = round_up(pl.MC * pl.T, MR);
  pl.tasks = pl.n_groups * pl.n_ocb;
  pl.lead = 8;
  pl.Wp = p.W + 1;
  if (p.upsample)
    pl.plane = skew_ld((pl.lead + (p.H + 2) * pl.Wp + 16 + 7) / 8 * 8);
  else
    pl.plane = (pl.P + 16 + 7) / 8 * 8;
  size_t ws = 0;
  ws += carve_bytes(sizeof(float) * pl.KC * pl.ld);            // B
  ws += carve_bytes(sizeof(float) * pl.rows_p * pl.ld);        // Y
  ws += carve_bytes(sizeof(float) * pl.G * pl.KC * pl.T);      // squared styles per tap, per sample
  ws += carve_bytes(sizeof(double) * pl.G * pl.MC);            // sums of squares, per sample
  ws += carve_bytes(sizeof(float) * (p.upsample ? 4 : 1) * pl.plane);  // col2im target
  ws += carve_bytes(sizeof(float) * 3 * (p.W_out() + 32));     // epilogue rows
  pl.ws_bytes = ws;
  return pl;
}

// sum_k w[k]^2 * s2[k] over n contiguous values.
inline double sumsq_weighted(const float* w, const float* s2, int64_t n) {
  int64_t k = 0;
  double total = 0.0;
#if ANYCOST_CPU_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; k + 16 <= n; k += 16) {
    const __m256 w0 = _mm256_loadu_ps(w + k), w1 = _mm256_loadu_ps(w + k + 8);
    a0 = _mm256_fmadd_ps(_mm256_mul_ps(w0, w0), _mm256_loadu_ps(s2 + k), a0);
    a1 = _mm256_fmadd_ps(_mm256_mul_ps(w1, w1), _mm256_loadu_ps(s2 + k + 8), a1);
  }
  alignas(32) float h[8];
  _mm256_store_ps(h, _mm256_add_ps(a0, a1));
  for (int l = 0; l < 8; ++l) total += h[l];
#endif
  float tail = 0.f;
  for (; k < n; ++k) tail += w[k] * w[k] * s2[k];
  return total + tail;
}

// The samples [n0, n0 + ng) (ng <= G) x output channels [o0, o_end).
template <int MR, int NR>
void small_task(const ModConvParams& p, const SmallPlan& pl, void* ws, int64_t n0, int64_t ng, int64_t o0,
                int64_t o_end) {
  Carver cv(ws);
  float* B = cv.take<float>(pl.KC * pl.ld);
  float* Y = cv.take<float>(pl.rows_p * pl.ld);
  float* S2 = cv.take<float>(pl.G * pl.KC * pl.T);
  double* sumsq = cv.take<double>(pl.G * pl.MC);
  float* planes = cv.take<float>((p.upsample ? 4 : 1) * pl.plane);
  float* rows = cv.take<float>(3 * (p.W_out() + 32));

  const int64_t T = pl.T, P = pl.P, P16 = pl.P16, W = p.W, H = p.H, ld = pl.ld, s2_n = pl.KC * T;
  const int64_t mc = o_end - o0, nrows = mc * T, cols = ng * P16;
  int64_t toff[9];
  for (int64_t t = 0; t < T; ++t) toff[t] = (t / p.K) * p.w_sh + (t % p.K) * p.w_sw;
  // A weight row (o, i0 .. i0+kc, all taps) is one contiguous run when the taps
  // and the input channels are packed ([.., C_in, K, K] contiguous in the last 3 dims).
  const bool w_rows_contig = p.w_sw == 1 && p.w_sh == p.K && p.w_si == T;
  std::fill(sumsq, sumsq + pl.G * pl.MC, 0.0);

  for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
    const int64_t kc = std::min(pl.KC, p.C_in - i0);
    // B = x * s (per sample a segment of P16 positions, zero tail).
    for (int64_t i = 0; i < kc; ++i)
      for (int64_t g = 0; g < ng; ++g) {
        const float sv = p.styles[(n0 + g) * p.s_sn + (i0 + i) * p.s_sc];
        const float* xi = p.x + (n0 + g) * p.x_sn + (i0 + i) * p.x_sc;
        float* bi = B + i * ld + g * P16;
        for (int64_t y = 0; y < H; ++y) {
          const float* xr = xi + y * p.x_sh;
          float* br = bi + y * W;
          if (p.x_sw == 1)
            for (int64_t xx = 0; xx < W; ++xx) br[xx] = xr[xx] * sv;
          else
            for (int64_t xx = 0; xx < W; ++xx) br[xx] = xr[xx * p.x_sw] * sv;
        }
        std::fill(bi + P, bi + P16, 0.f);
      }
    // Demodulation: sums over this block of (W[o,i,t] s_n[i])^2, per channel right
    // before the GEMM of its first rows (its weights are then in cache for it).
    if (p.demodulate)
      for (int64_t g = 0; g < ng; ++g)
        for (int64_t i = 0; i < kc; ++i) {
          const float sv = p.styles[(n0 + g) * p.s_sn + (i0 + i) * p.s_sc];
          for (int64_t t = 0; t < T; ++t) S2[g * s2_n + i * T + t] = sv * sv;
        }
    int64_t o_done = 0;  // channels whose sums of squares include this block
    // Y[(o, t), :] (+)= sum_i W[o0 + o, i0 + i, t] * B[i, :].
    const float* a_rows[MR];
    for (int64_t r0 = 0; r0 < nrows; r0 += MR) {
      const int64_t o_last = std::min(nrows, r0 + MR) - 1;  // last row of the group
      for (; p.demodulate && o_done <= o_last / T; ++o_done) {
        const float* wo = p.weight + (o0 + o_done) * p.w_so + i0 * p.w_si;
        for (int64_t g = 0; g < ng; ++g) {
          const float* s2 = S2 + g * s2_n;
          if (w_rows_contig) {
            sumsq[g * pl.MC + o_done] += sumsq_weighted(wo, s2, kc * T);
          } else {
            double ss = 0.0;
            for (int64_t i = 0; i < kc; ++i)
              for (int64_t t = 0; t < T; ++t) {
                const double v = double(wo[i * p.w_si + toff[t]]);
                ss += v * v * s2[i * T];
              }
            sumsq[g * pl.MC + o_done] += ss;
          }
        }
      }
      for (int m = 0; m < MR; ++m) {
        const int64_t r = std::min(r0 + m, nrows - 1);  // rows past the end: recompute the last
        a_rows[m] = p.weight + (o0 + r / T) * p.w_so + i0 * p.w_si + toff[r % T];
      }
      int64_t c = 0;
      for (; c + kVecLen * NR <= cols; c += kVecLen * NR)
        gemm_rows_ukernel<MR, NR>(a_rows, p.w_si, B + c, ld, kc, Y + r0 * ld + c, ld, i0 > 0);
      for (; c < cols; c += kVecLen)  // a short group's last vectors
        gemm_rows_ukernel<MR, 1>(a_rows, p.w_si, B + c, ld, kc, Y + r0 * ld + c, ld, i0 > 0);
    }
  }

  // Per channel and sample: col2im of the K*K tap rows, then the usual epilogue.
  for (int64_t o = 0; o < mc; ++o)
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t n = n0 + g;
      const EpilogueChannel e = make_epilogue(p, n, o0 + o, sumsq[g * pl.MC + o], true);
      const float* Yo = Y + o * T * ld + g * P16;  // tap t's row at Yo + t * ld
      if (!p.upsample) {
        const float* conv = Yo;  // K == 1: Y is the conv
        if (p.K == 3) {
          float* c = planes;
          std::fill(c, c + pl.plane, 0.f);
          for (int64_t t = 0; t < 9; ++t) {
            const int64_t dy = t / 3 - 1, dx = t % 3 - 1;  // out[y][x] += Y_t[y+dy][x+dx]
            const float* yt = Yo + t * ld;
            const int64_t x_lo = std::max<int64_t>(0, -dx), x_hi = std::min(W, W - dx);
            for (int64_t y = std::max<int64_t>(0, -dy); y < std::min(H, H - dy); ++y) {
              float* cr = c + y * W;
              const float* sr = yt + (y + dy) * W + dx;
              for (int64_t xx = x_lo; xx < x_hi; ++xx) cr[xx] += sr[xx];
            }
          }
          conv = c;
        }
        const float* skip = p.skip ? p.skip + n * p.skip_sn + (o0 + o) * p.skip_sc : nullptr;
        epilogue_plain(e, conv, W, 0, H, W, skip, p.skip_sh, p.skip_sw, H / 2, rows);
      } else {
        // Phase planes ee, eo, oe, oo of t = conv_transpose(x, w, stride 2):
        // plane (ky&1, kx&1), grid row m + (ky>>1) + 1 (row 0 is t row -1), column n + (kx>>1).
        const int64_t Wp = pl.Wp;
        std::fill(planes, planes + 4 * pl.plane, 0.f);
        for (int64_t t = 0; t < 9; ++t) {
          const int64_t ky = t / 3, kx = t % 3;
          float* dst = planes + ((ky & 1) * 2 + (kx & 1)) * pl.plane + pl.lead +
                       ((ky >> 1) + 1) * Wp + (kx >> 1);
          const float* yt = Yo + t * ld;
          for (int64_t m = 0; m < H; ++m) {
            float* dr = dst + m * Wp;
            const float* sr = yt + m * W;
            for (int64_t xx = 0; xx < W; ++xx) dr[xx] += sr[xx];
          }
        }
        const float* a = planes + pl.lead;
        epilogue_up(e, a, a + pl.plane, a + 2 * pl.plane, a + 3 * pl.plane, Wp, 0, H, W, rows,
                    rows + p.W_out() + 32);
      }
    }
}

template <class ParallelFor>
void modulated_conv2d_small(const ModConvParams& p, const ParallelFor& pf, const ModConvBlocking& blocking) {
  const SmallPlan pl = make_small_plan(p, blocking);
  pf(0, pl.tasks, 1, [&](int64_t t0, int64_t t1) {
    void* ws = thread_workspace(pl.ws_bytes);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ocb = t % pl.n_ocb, n0 = t / pl.n_ocb * pl.G, ng = std::min(pl.G, p.N - n0);
      const int64_t o0 = ocb * pl.MC, o_end = std::min(p.C_out, o0 + pl.MC);
      if (o0 >= o_end) continue;
      if (pl.wide)
        small_task<kSmallWideMR, kSmallWideNR>(p, pl, ws, n0, ng, o0, o_end);
      else
        small_task<kSmallMR, kSmallNR>(p, pl, ws, n0, ng, o0, o_end);
    }
  });
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
