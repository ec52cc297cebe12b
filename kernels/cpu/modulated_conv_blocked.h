// Fused styled (modulated) convolution on sliced channels, torch-free CPU path.
//
// Semantics (per sample n, all fp32):
//   w[o,i,:,:] = weight_scale * weight[o,i,:,:] * styles[n,i]
//   demodulate: w[o] *= 1/sqrt(sum_{i,ky,kx} w[o,i,ky,kx]^2 + eps)
//   no upsample: t = conv2d(x_n, w, padding K/2)                      -> H x W
//   upsample (K=3): t = conv_transpose2d(x_n, w^T, stride 2)           -> 2H+1
//                   t = conv2d(pad(t, 1), outer(k,k)), k=[1,3,3,1]/4   -> 2H x 2W
//   out = act(t + noise_strength * noise + bias[o])  [+ upfirdn2d-up2(skip)]
//
// Two paths: below ~16x16 px with many channels (where packing the weight per
// sample costs as much as the convolution) the style goes on the input and the
// weight is read in place by a GEMM, see modconv_small.h (use_small_path picks
// it; ModConvBlocking::small_path forces either). The plain 3x3 conv on larger
// images takes the Winograd F(2x2, 3x3) or F(4x4, 3x3) path of modconv_winograd.h
// (winograd_tile; ModConvBlocking::winograd forces a tile or none), the upsampling
// conv on large images the phase Winograd path of modconv_winograd_up.h
// (winograd_up_tile; ModConvBlocking::up_winograd). The rest of this file is the
// direct blocked path: the upsampling conv, the 1x1 conv and the 3x3 conv where
// Winograd does not pay.
//
// Implementation (no modulated weight is ever materialised):
//   * the style is folded into the packed weight tile (W[o,i,tap]*s[i]),
//     the demodulation coefficient is accumulated from the same packed values
//     (sum of squares) and applied, with weight_scale, per output channel in
//     the epilogue;
//   * the upsampling conv is computed as four dense sub-pixel convolutions on
//     the input grid (2x2, 2x1, 1x2, 1x1 taps: 9 taps, no zero MACs) whose
//     phase planes stay in cache until the epilogue blurs and interleaves them;
//   * the weight is read in place through its strides (a sliced view of the
//     full weight), one (MC x KC x taps) tile at a time.
//
// Blocking (per task = sample n x block of MC output channels x band of rows):
//   pack the task's weight block [MC/MR][C_in blocks of KC][taps][MR] (times
//   the style; demodulation sums of squares on the way)   (L2/L3, read once)
//   for each chunk of R rows of the band              (acc tile: MC x R x Wp, L2)
//     for each block of KC input channels             (xb: KC x (R+2) x Wp, L2)
//       pack the padded input rows of the chunk
//       for each strip of V = 8*NR positions          (input strip: L1)
//         for each MR-channel slice of the block       (micro-kernel, registers)
//     epilogue on the chunk (scale, blur, noise, bias, act, skip), write out.
// In the upsampling mode the last two phase rows of a chunk are carried to
// the next chunk of the band, so only the first chunk of a band has a halo.
// Tasks are ordered sample-major, then channel block, then band, and their
// count is made a multiple of the thread count (static schedules): at batch 1
// two threads split the channel blocks (or, with a single block, the rows).
//
// Measured on 2 Zen 2 cores (peak 214 GFLOP/s): 3x3 layers at 16-256 px run
// at 80-91% of peak, upsampling layers at 16-256 px output at 68-77% (the
// sub-pixel grid computes the 2H+1 transposed-conv rows/cols the "true MAC"
// count omits, plus the blur epilogue); see bench/cpp/bench_modulated_conv.cpp.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <climits>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "conv_microkernel.h"
#include "modconv_epilogue.h"
#include "modconv_pack.h"
#include "modconv_params.h"
#include "modconv_rgb.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

namespace detail {

struct ModConvPlan {
  int64_t MR, V;        // micro-kernel rows / positions per strip
  int64_t Wp;           // flattened row pitch
  int64_t MC, MCp, n_ocb;
  int64_t KC;
  int64_t R;            // rows per chunk (output rows; input grid rows if upsampling)
  int64_t n_bands;      // bands per (n, ocb)
  int64_t lead;         // leading zero floats of each phase plane (upsampling)
  int64_t plane;        // floats per (channel, phase) plane in acc
  int64_t acc_ld;       // floats between consecutive output channels in acc
  int64_t xb_cs;        // floats per channel in the packed input block
  int64_t taps;         // taps per input channel in the packed weight (K*K)
  RgbLayout rgb;        // a chunk's RGB sums (RGB head)
  int64_t tasks;
  size_t ws_bytes;
};

inline ModConvPlan make_plan(const ModConvParams& p, const ModConvBlocking& b, int64_t MR,
                             int64_t V) {
  ModConvPlan pl{};
  pl.MR = MR;
  pl.V = V;
  const int64_t nt = std::max(1, b.num_threads);
  pl.taps = int64_t(p.K) * p.K;
  pl.Wp = (p.K == 1 && !p.upsample) ? p.W : p.W + 1;
  const int64_t phases = p.upsample ? 4 : 1;

  // Output-channel blocks: even split, rounded up to MR.
  int64_t n_ocb = ceil_div(p.C_out, std::max<int64_t>(b.direct.mc, MR));
  // At batch 1 make sure every thread gets channel blocks on small images
  // (bands there would be too thin to amortise the halo).
  if (p.N * n_ocb < nt && p.H * p.W <= 32 * 32)
    n_ocb = std::min(ceil_div(p.C_out, MR), round_up(n_ocb, nt));
  pl.MC = round_up(ceil_div(p.C_out, n_ocb), MR);
  pl.n_ocb = ceil_div(p.C_out, pl.MC);
  pl.MCp = pl.MC;

  int64_t n_kc = ceil_div(p.C_in, std::max<int64_t>(b.direct.kc, 1));
  pl.KC = ceil_div(p.C_in, n_kc);

  // Task split: N x n_ocb x n_bands (bands of rows, each processed in chunks
  // of R rows). Each task packs its weight block once, so use as few bands as
  // give every thread the same number of tasks.
  const int64_t base = p.N * pl.n_ocb;
  pl.n_bands = bands_for_threads(base, nt, p.H);
  pl.tasks = base * pl.n_bands;
  const int64_t band_rows = ceil_div(p.H, pl.n_bands);

  // Rows per chunk from the accumulator budget (L2) ...
  const int64_t halo = p.upsample ? 2 : 0;
  const int64_t row_floats = pl.MCp * phases * pl.Wp;
  int64_t R = b.direct.acc_bytes / (4 * row_floats) - halo;
  // ... but at least ~16 strips of positions per chunk, so that rounding the
  // last strip and (upsampling) the carried halo stay a few percent.
  R = std::max(R, ceil_div(16 * V, pl.Wp));
  R = std::max<int64_t>(1, std::min(R, band_rows));
  // Then the R in [R/2, R] computing the fewest positions over a band
  // (strips of V positions are rounded up per chunk; each extra chunk costs
  // about one row for the carried halo when upsampling).
  {
    int64_t best = R, best_cost = INT64_MAX;
    for (int64_t r = R; r >= std::max<int64_t>(1, R / 2); --r) {
      int64_t cost = 0;
      for (int64_t y = 0; y < band_rows; y += r)
        cost += round_up(std::min(r, band_rows - y) * pl.Wp, V) + (p.upsample ? pl.Wp : 0);
      if (cost < best_cost) best = r, best_cost = cost;
    }
    R = best;
  }
  pl.R = R;
  // Packed input block: KC x (R + 2 or 3) rows; shrink KC (not below 8) to fit.
  const int64_t in_rows = R + 3;
  while (pl.KC > 8 && pl.KC * in_rows * pl.Wp * 4 > b.direct.xb_bytes) pl.KC = ceil_div(pl.KC, 2);
  pl.KC = std::min(pl.KC, p.C_in);
  n_kc = ceil_div(p.C_in, pl.KC);
  pl.KC = ceil_div(p.C_in, n_kc);

  const int64_t grid_rows = pl.R + halo;
  pl.lead = p.upsample ? 8 : 0;
  pl.plane = skew_ld(round_up(pl.lead + grid_rows * pl.Wp + V + kVecLen, 16));
  pl.acc_ld = p.upsample ? 4 * pl.plane : pl.plane;
  const int64_t xrows = p.upsample ? grid_rows + 1 : pl.R + 2;
  pl.xb_cs = skew_ld(round_up(xrows * pl.Wp + V + 2 * pl.Wp + 16, 16));

  size_t ws = 0;
  ws += carve_bytes(sizeof(float) * pl.MCp * pl.acc_ld);                 // acc
  ws += carve_bytes(sizeof(float) * pl.KC * pl.xb_cs);                   // xb
  ws += carve_bytes(sizeof(float) * pl.MCp * p.C_in * pl.taps);          // wpack
  ws += carve_bytes(sizeof(double) * pl.MCp);                            // sumsq
  ws += carve_bytes(sizeof(float) * 3 * (p.W_out() + 32));               // row scratch
  pl.rgb = rgb_layout(pl.R, p.W);
  ws += carve_bytes(sizeof(float) * rgb_scratch_floats(p, pl.rgb));       // RGB sums
  pl.ws_bytes = ws;
  return pl;
}

// Pack all input channels of a task's weight block, one [ob][TapLayout][MR]
// tile per KC block (tile of block i0 starts at MCp * i0 * taps), and compute
// the per-channel sums of squares (for demodulation). Done once per task and
// reused by all its chunks.
inline void pack_weight_block(float* dst, const ModConvParams& p, const ModConvPlan& pl,
                              const float* s_n, int64_t o0, int64_t o_end, double* sumsq) {
  std::fill(sumsq, sumsq + pl.MCp, 0.0);
  for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
    const int64_t kc = std::min(pl.KC, p.C_in - i0);
    pack_weights(dst + pl.MCp * i0 * pl.taps, p, s_n, o0, o_end, pl.MCp, pl.MR, i0, kc, pl.taps,
                 sumsq);
  }
}

// Per-thread view of the workspace.
struct TaskBuffers {
  float* acc;
  float* xb;
  float* wpack;
  double* sumsq;
  float* rows;  // 3 scratch rows of W_out + 32 floats
  float* rgb;   // a chunk's RGB sums (RGB head)
};

inline TaskBuffers carve(void* ws, const ModConvPlan& pl, const ModConvParams& p) {
  Carver c(ws);
  TaskBuffers t;
  t.acc = c.take<float>(pl.MCp * pl.acc_ld);
  t.xb = c.take<float>(pl.KC * pl.xb_cs);
  t.wpack = c.take<float>(pl.MCp * p.C_in * pl.taps);
  t.sumsq = c.take<double>(pl.MCp);
  t.rows = c.take<float>(3 * (p.W_out() + 32));
  t.rgb = c.take<float>(rgb_scratch_floats(p, pl.rgb));
  return t;
}

inline EpilogueChannel make_epilogue(const ModConvParams& p, int64_t n, int64_t o, double sumsq,
                                     bool write_demod) {
  EpilogueChannel e;
  float d = 1.f;
  if (p.demodulate) {
    const double ws = p.weight_scale;
    d = static_cast<float>(1.0 / std::sqrt(ws * ws * sumsq + double(p.eps)));
    if (p.demod_out && write_demod) p.demod_out[n * p.d_sn + o * p.d_sc] = d;
  }
  e.scale = p.weight_scale * d;
  set_epilogue(e, p, n, o);
  return e;
}

// ---------------------------------------------------------------------------
// One chunk of the plain conv: output rows [y0, y1) of channels [o0, o_end), the RGB head's sums
// into channel block ocb's planes (modconv_rgb.h).
template <int MR, int NR>
void plain_chunk(const ModConvParams& p, const ModConvPlan& pl, const TaskBuffers& tb, int64_t n,
                 int64_t o0, int64_t o_end, int64_t y0, int64_t y1, float* rgb_parts, int64_t ocb) {
  constexpr int64_t V = kVecLen * NR;
  const float* x_n = p.x + n * p.x_sn;
  const int64_t pad = p.K / 2;
  const int64_t npos = (y1 - y0) * pl.Wp;
  const int64_t n_ob = ceil_div(o_end - o0, MR);
  for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
    const int64_t kc = std::min(pl.KC, p.C_in - i0);
    pack_input_window(tb.xb, pl.xb_cs, pl.Wp, x_n + i0 * p.x_sc, p.x_sc, p.x_sh, p.x_sw, kc, y0 - pad,
                      (y1 - y0) + 2 * pad, -pad, p.W + pad, p.H, p.W);
    const float* wblk = tb.wpack + pl.MCp * i0 * pl.taps;
    const bool accum = i0 > 0;
    const int64_t w_ob = kc * pl.taps * MR;
    for (int64_t g = 0; g < npos; g += V) {
      const float* xg = tb.xb + g;
      float* ag = tb.acc + g;
      if (p.K == 3) {
        for (int64_t ob = 0; ob < n_ob; ++ob)
          conv_ukernel<MR, NR, 3, 3, 1>(wblk + ob * w_ob, 9 * MR, xg, pl.xb_cs, pl.Wp, kc,
                                        ag + ob * MR * pl.acc_ld, pl.acc_ld, accum);
      } else {
        for (int64_t ob = 0; ob < n_ob; ++ob)
          conv_ukernel<MR, NR, 1, 1, 1>(wblk + ob * w_ob, MR, xg, pl.xb_cs, 0, kc,
                                        ag + ob * MR * pl.acc_ld, pl.acc_ld, accum);
      }
    }
  }
  const RgbChunk rgb = rgb_chunk(p, tb.rgb, pl.rgb, n, y0, y1, 0, p.W);
  if (rgb.acc) rgb_begin(p, rgb, ocb == 0, tb.rows);
  for (int64_t o = o0; o < o_end; ++o) {
    EpilogueChannel e = make_epilogue(p, n, o, tb.sumsq[o - o0], y0 == 0);
    set_rgb(e, p, rgb, o);
    const float* skip = p.skip ? p.skip + n * p.skip_sn + o * p.skip_sc : nullptr;
    epilogue_plain(e, tb.acc + (o - o0) * pl.acc_ld, pl.Wp, y0, y1, p.W, skip, p.skip_sh,
                   p.skip_sw, p.H / 2, tb.rows);
  }
  if (rgb.acc) rgb_end(p, rgb, rgb_parts, ocb);
}

// Sub-pixel phases of the transposed conv of one chunk. Acc grid row j holds
// input-grid row m = m_base + j. Computes the even-row phases (ee, eo) for
// grid rows [e_lo, e_hi] and the odd-row phases (oe, oo) for [o_lo, o_hi]
// (empty when lo > hi) from one packed input block.
template <int MR, int NR>
void up_phases(const ModConvParams& p, const ModConvPlan& pl, const TaskBuffers& tb, int64_t n,
               int64_t n_ob, int64_t m_base, int64_t e_lo, int64_t e_hi, int64_t o_lo,
               int64_t o_hi) {
  constexpr int64_t V = kVecLen * NR;
  const float* x_n = p.x + n * p.x_sn;
  const int64_t Wp = pl.Wp;
  const int64_t g_lo = std::min(e_lo, o_lo), g_hi = std::max(e_hi, o_hi);
  if (g_lo > g_hi) return;
  const int64_t ld = pl.acc_ld;
  // Flattened position ranges (relative to grid row g_lo) of both phase pairs.
  const int64_t e0 = (e_lo - g_lo) * Wp, e1 = e_lo <= e_hi ? (e_hi - g_lo + 1) * Wp : e0;
  const int64_t q0 = (o_lo - g_lo) * Wp, q1 = o_lo <= o_hi ? (o_hi - g_lo + 1) * Wp : q0;
  float* acc0 = tb.acc + pl.lead + (g_lo - m_base) * Wp;
  for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
    const int64_t kc = std::min(pl.KC, p.C_in - i0);
    // Input rows g_lo-1 .. g_hi; grid (m, n) reads (m, n) and (m-1, n-1) neighbours:
    // base(g) = g + Wp + 1 for flattened grid index g = (m - g_lo) * Wp + n.
    pack_input_window(tb.xb, pl.xb_cs, Wp, x_n + i0 * p.x_sc, p.x_sc, p.x_sh, p.x_sw, kc, g_lo - 1,
                      g_hi - g_lo + 2, -1, p.W + 1, p.H, p.W);
    const float* wblk = tb.wpack + pl.MCp * i0 * 9;
    const bool accum = i0 > 0;
    const int64_t w_ob = kc * 9 * MR;
    // Phase weights are stored [phase][i][taps] (see TapLayout); planes are
    // ee, eo, oe, oo. Strip-outer, channel-slice-inner: the input strip stays
    // in L1 while all MR-slices of the block use it.
    for (int64_t g = e0; g < e1; g += V) {
      const float* xg = tb.xb + g + Wp + 1;
      for (int64_t ob = 0; ob < n_ob; ++ob) {
        const float* w = wblk + ob * w_ob;
        float* a = acc0 + g + ob * MR * ld;
        conv_ukernel<MR, NR, 2, 2, -1>(w, 4 * MR, xg, pl.xb_cs, -Wp, kc, a, ld, accum);
        conv_ukernel<MR, NR, 2, 1, -1>(w + 4 * kc * MR, 2 * MR, xg, pl.xb_cs, -Wp, kc,
                                       a + pl.plane, ld, accum);
      }
    }
    for (int64_t g = q0; g < q1; g += V) {
      const float* xg = tb.xb + g + Wp + 1;
      for (int64_t ob = 0; ob < n_ob; ++ob) {
        const float* w = wblk + ob * w_ob;
        float* a = acc0 + g + ob * MR * ld;
        conv_ukernel<MR, NR, 1, 2, -1>(w + 6 * kc * MR, 2 * MR, xg, pl.xb_cs, -Wp, kc,
                                       a + 2 * pl.plane, ld, accum);
        conv_ukernel<MR, NR, 1, 1, -1>(w + 8 * kc * MR, MR, xg, pl.xb_cs, -Wp, kc,
                                       a + 3 * pl.plane, ld, accum);
      }
    }
  }
}

// Zero acc grid row j of the odd-row phase planes (t rows -1 and 2H+1).
inline void zero_odd_row(const ModConvPlan& pl, const TaskBuffers& tb, int64_t j) {
  for (int64_t c = 0; c < pl.MCp; ++c)
    for (int ph = 2; ph < 4; ++ph) {
      float* r = tb.acc + c * pl.acc_ld + ph * pl.plane + pl.lead + j * pl.Wp;
      std::fill(r, r + pl.Wp, 0.f);
    }
}

// One band of the upsampling conv: output rows [2*mA, 2*mB) of channels [o0, o_end).
// A chunk [ma, mb) needs the even-row phases of grid rows [ma, mb] and the
// odd-row phases of [ma-1, mb]; odd rows -1 and H are t's zero padding.
template <int MR, int NR>
void up_band(const ModConvParams& p, const ModConvPlan& pl, const TaskBuffers& tb, int64_t n,
             int64_t o0, int64_t o_end, int64_t mA, int64_t mB) {
  const int64_t Wp = pl.Wp;
  const int64_t n_ob = ceil_div(o_end - o0, MR);
  // Zero the leading guard of every plane (read as t[., -1]).
  for (int64_t c = 0; c < pl.MCp; ++c)
    for (int ph = 0; ph < 4; ++ph)
      std::fill(tb.acc + c * pl.acc_ld + ph * pl.plane,
                tb.acc + c * pl.acc_ld + ph * pl.plane + pl.lead, 0.f);
  for (int64_t ma = mA; ma < mB; ma += pl.R) {
    const int64_t mb = std::min(mB, ma + pl.R);
    const int64_t m_base = ma - 1;  // grid row of acc row 0
    if (ma == mA) {
      up_phases<MR, NR>(p, pl, tb, n, n_ob, m_base, ma, mb, std::max<int64_t>(ma - 1, 0),
                        std::min(mb, p.H - 1));
      if (ma == 0) zero_odd_row(pl, tb, 0);
    } else {
      // Carry grid rows ma-1, ma (last two of the previous chunk) to rows 0, 1.
      for (int64_t c = 0; c < pl.MCp; ++c)
        for (int ph = 0; ph < 4; ++ph) {
          float* pp = tb.acc + c * pl.acc_ld + ph * pl.plane + pl.lead;
          std::memmove(pp, pp + pl.R * Wp, sizeof(float) * 2 * Wp);
        }
      up_phases<MR, NR>(p, pl, tb, n, n_ob, m_base, ma + 1, mb, ma + 1, std::min(mb, p.H - 1));
    }
    if (mb == p.H) zero_odd_row(pl, tb, p.H - m_base);
    for (int64_t o = o0; o < o_end; ++o) {
      const EpilogueChannel e = make_epilogue(p, n, o, tb.sumsq[o - o0], ma == 0);
      const float* a = tb.acc + (o - o0) * pl.acc_ld + pl.lead;
      epilogue_up(e, a, a + pl.plane, a + 2 * pl.plane, a + 3 * pl.plane, Wp, ma, mb, p.W,
                  tb.rows, tb.rows + p.W_out() + 32);
    }
  }
}

inline void check_params(const ModConvParams& p) {
  if (p.N < 1 || p.C_in < 1 || p.C_out < 1 || p.H < 1 || p.W < 1)
    throw std::invalid_argument("modulated_conv2d: empty sizes");
  if (p.K != 1 && p.K != 3) throw std::invalid_argument("modulated_conv2d: K must be 1 or 3");
  if (p.upsample && p.K != 3) throw std::invalid_argument("modulated_conv2d: upsample needs K=3");
  if (p.skip && (p.upsample || (p.H % 2) || (p.W % 2)))
    throw std::invalid_argument("modulated_conv2d: skip needs no upsample and even H, W");
  if (!p.x || !p.weight || !p.styles || (!p.out && !p.rgb.out))
    throw std::invalid_argument("modulated_conv2d: null tensor");
  if (p.rgb.out) {
    if (p.upsample || p.skip)
      throw std::invalid_argument("modulated_conv2d: an RGB head needs a plain conv without skip");
    if (!p.rgb.w || !p.rgb.bias) throw std::invalid_argument("modulated_conv2d: RGB head without weight or bias");
    if (p.rgb.skip && ((p.H % 2) || (p.W % 2)))
      throw std::invalid_argument("modulated_conv2d: an RGB skip needs even H, W");
  }
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END

#include "modconv_small.h"
#include "modconv_winograd.h"
#include "modconv_winograd_up.h"

ANYCOST_CPU_NAMESPACE_BEGIN

// Default micro-kernel shape per level: MR output channels x NR vectors of positions.
//   AVX2 (16 ymm): 4 x 3 (24 positions, 12 accumulators).
//   AVX-512 (32 zmm): 8 x 3 (48 positions, 24 accumulators); see bench/cpp/bench_modulated_conv.cpp
//   --blockings for the alternatives measured.
#if ANYCOST_CPU_AVX512
constexpr int kModConvMR = 8;
constexpr int kModConvNR = 3;
#else
constexpr int kModConvMR = 4;
constexpr int kModConvNR = 3;
#endif

// Fused modulated conv forward: writes p.out (and p.demod_out if set).
//   pf: a parallel_for callable, pf(begin, end, grain, f) with f(b, e)
//       (at::parallel_for in the torch glue; SerialFor / ThreadedFor here).
//   blocking.num_threads: number of threads behind pf (at::get_num_threads()),
//       used to give every thread the same number of tasks.
// MR x NR selects the micro-kernel (MR output channels x kVecLen*NR positions);
// the defaults above suit each level.
// Throws std::invalid_argument on inconsistent parameters.
template <int MR = kModConvMR, int NR = kModConvNR, class ParallelFor>
void modulated_conv2d_forward(const ModConvParams& p, const ParallelFor& pf,
                              const ModConvBlocking& blocking = ModConvBlocking()) {
  detail::check_params(p);
  if (!p.rgb.out && detail::use_small_path(p, blocking.small_path)) {
    detail::modulated_conv2d_small(p, pf, blocking);
    return;
  }
  if (const int tile = detail::winograd_tile(p, blocking.winograd)) {
    detail::modulated_conv2d_winograd<MR, NR>(p, pf, blocking, tile);
    return;
  }
  if (const int tile = detail::winograd_up_tile(p, blocking.up_winograd)) {
    detail::modulated_conv2d_winograd_up<MR, NR>(p, pf, blocking, tile);
    return;
  }
  const detail::ModConvPlan pl = detail::make_plan(p, blocking, MR, kVecLen * NR);
  const std::unique_ptr<float[]> rgb_partials = detail::rgb_partials(p, pl.n_ocb);
  pf(0, pl.tasks, 1, [&](int64_t t0, int64_t t1) {
    const detail::TaskBuffers tb = detail::carve(thread_workspace(pl.ws_bytes), pl, p);
    int64_t packed_n = -1, packed_o0 = -1;  // whose weights tb holds: the bands of a block that follow share them
    for (int64_t t = t0; t < t1; ++t) {
      const detail::ConvTask k = detail::conv_task(t, pl.n_bands, pl.n_ocb, pl.MC, p.C_out, p.H);
      if (k.r0 >= k.r1) continue;
      if (k.n != packed_n || k.o0 != packed_o0) {
        detail::pack_weight_block(tb.wpack, p, pl, p.styles + k.n * p.s_sn, k.o0, k.o_end, tb.sumsq);
        packed_n = k.n, packed_o0 = k.o0;
      }
      if (!p.upsample) {
        for (int64_t y0 = k.r0; y0 < k.r1; y0 += pl.R)
          detail::plain_chunk<MR, NR>(p, pl, tb, k.n, k.o0, k.o_end, y0, std::min(k.r1, y0 + pl.R),
                                      rgb_partials.get(), k.o0 / pl.MC);
      } else {
        detail::up_band<MR, NR>(p, pl, tb, k.n, k.o0, k.o_end, k.r0, k.r1);
      }
    }
  });
  detail::rgb_reduce(p, rgb_partials.get(), pl.n_ocb, pf);
}

ANYCOST_CPU_NAMESPACE_END
