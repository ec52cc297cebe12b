// The int8 styled convolution (semantics: QConvParams in qconv_params.h), torch-free CPU path.
//
// The weight is packed once per (layer, width) by the caller (detail::qconv_pack_weights: int8,
// per-output-channel scales kept outside), the style goes on the input and the demodulation with
// the dequantisation into the per-(sample, channel) out_scale, so a call does no weight work:
//   1. quantise (parallel over samples x groups of 4 input channels): x * style rounded to int8 once,
//      into the micro-kernel's layout (qconv_pack.h), in a buffer all tasks read (thread_workspace
//      kCallSlot of the calling thread);
//   2. convolve (parallel over tasks = sample x block of MC output channels x band of rows; a block's tasks back to
//      back over the samples, conv_task_block_major):
//        for each chunk of R rows of the band          (int32 acc tile: MC x R x Wp, L2)
//          for each block of KG channel groups
//            for each strip of V positions              (its activations: L1 / L2)
//              for each MR-channel slice of the block    (micro-kernel, registers)
//        epilogue per channel (modconv_epilogue.h): int32 -> fp32, x out_scale, + noise, + bias,
//        leaky ReLU x gain, written to the (strided) NCHW output; with an RGB head also summed into
//        the chunk's RGB planes (modconv_rgb.h, as in the fp32 kernel), the output then optional.
// The upsampling conv is the fp32 kernel's scheme in integers (modulated_conv_blocked.h): the
// stride-2 transposed conv as four sub-pixel phases on the input grid (2x2, 2x1, 1x2, 1x1 taps of the
// same packed weight), int32 phase planes, the last two grid rows of a chunk carried to the next,
// then the fp32 blur + interleave epilogue (epilogue_up) reading the int32 planes.
// The zero point of a level's packed activations (qconv_microkernel.h) is removed by starting the
// accumulators at -zero_point * (sum of the weights of the taps used), so the tile holds exact
// sum(W * q); the padding holds the zero point too, so this holds at the borders.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "modconv_epilogue.h"
#include "modconv_rgb.h"
#include "parallel.h"
#include "qconv_microkernel.h"
#include "qconv_pack.h"
#include "qconv_params.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

struct QConvPlan {
  int64_t G;            // input channel groups (ceil(C_in / 4))
  int64_t Wp;           // row pitch of the padded grid (W + 1)
  int64_t taps;         // K * K
  int64_t plane_words;  // 32-bit words per (sample, group) plane of quantised activations
  int64_t MC, n_ocb;    // output channels per task (a multiple of kQPackMR), blocks
  int64_t KG;           // groups per input block
  int64_t R;            // rows per chunk (input grid rows if upsampling)
  int64_t n_bands, tasks;
  int64_t lead;         // leading zero words of each phase plane (upsampling)
  int64_t plane;        // int32 per (channel, phase) plane of the acc tile
  int64_t acc_ld;       // int32 per channel in the acc tile (1 or 4 planes)
  RgbLayout rgb;        // a chunk's RGB sums (RGB head)
  size_t ws_bytes;      // per worker: acc tile, accumulator starts, epilogue rows
};

inline void check_qconv_params(const QConvParams& p) {
  if (p.N < 1 || p.C_in < 1 || p.C_out < 1 || p.H < 1 || p.W < 1)
    throw std::invalid_argument("anycost: qconv2d: empty sizes");
  if (p.K != 1 && p.K != 3) throw std::invalid_argument("anycost: qconv2d: K must be 1 or 3");
  if (p.upsample && p.K != 3) throw std::invalid_argument("anycost: qconv2d: upsample needs K=3");
  if (!p.x || !p.packed || !p.wsum || !p.out_scale || (!p.out && !p.rgb.out))
    throw std::invalid_argument("anycost: qconv2d: null tensor");
  if (p.rgb.out) {
    if (p.upsample) throw std::invalid_argument("anycost: qconv2d: an RGB head needs a plain conv");
    if (!p.rgb.w || !p.rgb.bias) throw std::invalid_argument("anycost: qconv2d: RGB head without weight or bias");
    if (p.rgb.skip && ((p.H % 2) || (p.W % 2)))
      throw std::invalid_argument("anycost: qconv2d: an RGB skip needs an even output size");
  }
  if (!p.dynamic_scale && (!(p.act_scale > 0.f) || !std::isfinite(1.f / p.act_scale)))
    throw std::invalid_argument("anycost: qconv2d: act_scale must be positive and finite, got " +
                                std::to_string(p.act_scale));
}

inline QConvPlan make_qconv_plan(const QConvParams& p, const QConvBlocking& b, int64_t V) {
  QConvPlan pl{};
  const int64_t nt = std::max(1, b.num_threads);
  pl.G = qconv_in_groups(p.C_in);
  pl.Wp = p.W + 1;
  pl.taps = int64_t(p.K) * p.K;
  // The last strip of a chunk reads up to V - 1 positions past the chunk, plus the taps' 2 rows + 2.
  pl.plane_words = round_up((p.H + 2) * pl.Wp + V + 2, 16);

  // Output-channel blocks of whole packed tiles, an even split; at batch 1 on small images every
  // thread gets blocks (bands would be too thin there).
  const int64_t tiles = qconv_out_tiles(p.C_out);
  int64_t n_ocb = ceil_div(tiles, std::max<int64_t>(1, b.mc / kQPackMR));
  if (p.N * n_ocb < nt && p.H * p.W <= 32 * 32) n_ocb = std::min(tiles, round_up(n_ocb, nt));
  pl.MC = ceil_div(tiles, n_ocb) * kQPackMR;
  pl.n_ocb = ceil_div(p.C_out, pl.MC);
  const int64_t n_kg = ceil_div(pl.G, std::max<int64_t>(1, b.kc / kQGroup));
  pl.KG = ceil_div(pl.G, n_kg);

  pl.n_bands = bands_for_threads(p.N * pl.n_ocb, nt, p.H);
  pl.tasks = p.N * pl.n_ocb * pl.n_bands;
  const int64_t band_rows = ceil_div(p.H, pl.n_bands);
  // Rows per chunk: the acc tile within its budget (the upsampling planes hold 2 carried rows), but
  // at least ~4 strips (rounding the last strip of a chunk up to V positions costs a few percent).
  const int64_t phases = p.upsample ? 4 : 1, halo = p.upsample ? 2 : 0;
  const int64_t budget = p.upsample ? b.up_acc_bytes : b.acc_bytes;
  int64_t R = budget / (int64_t(sizeof(int32_t)) * phases * pl.MC * pl.Wp) - halo;
  R = std::max(R, ceil_div(4 * V, pl.Wp));
  pl.R = std::max<int64_t>(1, std::min(R, band_rows));
  // Slack: the last strip's V positions and the epilogues' vector reads past a row's end.
  pl.lead = p.upsample ? 16 : 0;
  pl.plane = round_up(pl.lead + (pl.R + halo) * pl.Wp + V + 16, 16);
  pl.acc_ld = phases * pl.plane;
  pl.rgb = rgb_layout(pl.R, p.W);
  pl.ws_bytes = carve_bytes(sizeof(int32_t) * pl.MC * pl.acc_ld) + carve_bytes(sizeof(int32_t) * 4 * pl.MC) +
                carve_bytes(sizeof(float) * 2 * (p.W + 48)) +
                carve_bytes(sizeof(float) * rgb_scratch_floats(p, pl.rgb));
  return pl;
}

// Per-worker view of the workspace.
struct QConvBuffers {
  int32_t* acc;   // [MC][acc_ld]
  int32_t* init;  // [phases][MC]: the accumulator start of each channel (and phase)
  float* rows;    // 2 x (W + 48): epilogue_up's vertical pass, rgb_begin's skip row
  float* rgb;     // a chunk's RGB sums (RGB head)
};

inline QConvBuffers carve_qconv(void* ws, const QConvPlan& pl, const QConvParams& p) {
  Carver c(ws);
  QConvBuffers b;
  b.acc = c.take<int32_t>(pl.MC * pl.acc_ld);
  b.init = c.take<int32_t>(4 * pl.MC);
  b.rows = c.take<float>(2 * (p.W + 48));
  b.rgb = c.take<float>(rgb_scratch_floats(p, pl.rgb));
  return b;
}

// Packed taps (row-major 3x3) of each sub-pixel phase ee, eo, oe, oo of the upsampling conv:
// t[2m][2n] (ee) = sum x[m-a][n-b] W[2a][2b], t[2m][2n+1] (eo) = sum x[m-a][n] W[2a][1],
// t[2m+1][2n] (oe) = sum x[m][n-b] W[1][2b], t[2m+1][2n+1] (oo) = x[m][n] W[1][1]  (a, b in {0, 1}).
constexpr int kPhaseTaps[4][5] = {{4, 0, 2, 6, 8}, {2, 1, 7}, {2, 3, 5}, {1, 4}};  // {count, taps...}

// The accumulator starts of the block [o0, o0 + MC): -zero point x the weight sums of the taps a
// phase uses (all taps without upsampling); 0 for channels past C_out.
inline void qconv_init(const QConvParams& p, const QConvPlan& pl, int64_t o0, int32_t* init) {
  const int phases = p.upsample ? 4 : 1;
  for (int ph = 0; ph < phases; ++ph)
    for (int64_t m = 0; m < pl.MC; ++m) {
      const int64_t o = o0 + m;
      int32_t sum = 0;
      if (o < p.C_out) {
        if (p.upsample)
          for (int k = 1; k <= kPhaseTaps[ph][0]; ++k) sum += p.wsum[o * 9 + kPhaseTaps[ph][k]];
        else
          for (int64_t t = 0; t < pl.taps; ++t) sum += p.wsum[o * pl.taps + t];
      }
      init[ph * pl.MC + m] = -kQActZero * sum;
    }
}

inline EpilogueChannel qconv_epilogue(const QConvParams& p, int64_t n, int64_t o) {
  EpilogueChannel e;
  e.scale = p.out_scale[n * p.os_sn + o * p.os_sc];
  set_epilogue(e, p, n, o);
  return e;
}

// The packed weight of output channel o (a multiple of the micro-kernel's MR) at group g.
inline const int8_t* qconv_weight(const QConvParams& p, const QConvPlan& pl, int64_t o, int64_t g) {
  return p.packed + ((o / kQPackMR) * pl.G + g) * pl.taps * kQPackMR * kQGroup + (o % kQPackMR) * kQGroup;
}

// One chunk of the plain conv: output rows [y0, y1) of channels [o0, o_end) of sample n, into the
// acc tile, then written out (and summed into the RGB planes of channel block ocb: rgb_parts as in
// modconv_rgb.h). xq_n: the quantised planes of sample n.
template <int MR, int NR>
void qconv_chunk(const QConvParams& p, const QConvPlan& pl, const uint32_t* xq_n, const QConvBuffers& tb,
                 int64_t n, int64_t o0, int64_t o_end, int64_t y0, int64_t y1, float* rgb_parts, int64_t ocb) {
  constexpr int64_t V = kQLanes * NR;
  const int64_t npos = (y1 - y0) * pl.Wp;
  const int64_t n_ob = ceil_div(o_end - o0, MR);
  const int64_t w_gs = pl.taps * kQPackMR * kQGroup;  // bytes per group of a packed tile
  const int64_t x_gs = pl.plane_words * 4;           // bytes per plane
  // Tap (0, 0) of output position g is plane word y0 * Wp + g; a 1x1 conv reads the centre tap only.
  const int64_t origin = y0 * pl.Wp + (p.K == 1 ? pl.Wp + 1 : 0);
  for (int64_t g0 = 0; g0 < pl.G; g0 += pl.KG) {
    const int64_t kg = std::min(pl.KG, pl.G - g0);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(xq_n + g0 * pl.plane_words + origin);
    for (int64_t g = 0; g < npos; g += V)
      for (int64_t ob = 0; ob < n_ob; ++ob) {
        const int8_t* w = qconv_weight(p, pl, o0 + ob * MR, g0);
        int32_t* a = tb.acc + ob * MR * pl.acc_ld + g;
        const int32_t* start = g0 == 0 ? tb.init + ob * MR : nullptr;
        if (p.K == 3)
          qconv_ukernel<MR, NR, 3, 3>(w, w_gs, xb + 4 * g, x_gs, 4 * pl.Wp, kg, a, pl.acc_ld, start);
        else
          qconv_ukernel<MR, NR, 1, 1>(w, w_gs, xb + 4 * g, x_gs, 0, kg, a, pl.acc_ld, start);
      }
  }
  const RgbChunk rgb = rgb_chunk(p, tb.rgb, pl.rgb, n, y0, y1, 0, p.W);
  if (rgb.acc) rgb_begin(p, rgb, ocb == 0, tb.rows);
  for (int64_t o = o0; o < o_end; ++o) {
    EpilogueChannel e = qconv_epilogue(p, n, o);
    set_rgb(e, p, rgb, o);
    epilogue_plain(e, tb.acc + (o - o0) * pl.acc_ld, pl.Wp, y0, y1, p.W, nullptr, 0, 0, 0, nullptr);
  }
  if (rgb.acc) rgb_end(p, rgb, rgb_parts, ocb);
}

// Sub-pixel phases of one upsampling chunk (acc grid row j holds grid row m_base + j): the even-row
// phases (ee, eo) of grid rows [e_lo, e_hi] and the odd-row ones (oe, oo) of [o_lo, o_hi] (empty
// when lo > hi). Grid (m, n) reads the quantised x[m - a][n - b] at plane word (m + 1 - a) * Wp +
// n + 1 - b: backwards from word g + Wp + 1 for grid position g = m * Wp + n.
template <int MR, int NR>
void qconv_up_phases(const QConvParams& p, const QConvPlan& pl, const uint32_t* xq_n, const QConvBuffers& tb,
                     int64_t n_ob, int64_t o0, int64_t m_base, int64_t e_lo, int64_t e_hi, int64_t o_lo,
                     int64_t o_hi) {
  constexpr int64_t V = kQLanes * NR;
  constexpr int64_t kTap = kQPackMR * kQGroup;  // bytes of one packed tap
  const int64_t Wp = pl.Wp, ld = pl.acc_ld, MC = pl.MC;
  const int64_t g_lo = std::min(e_lo, o_lo), g_hi = std::max(e_hi, o_hi);
  if (g_lo > g_hi) return;
  // Flattened position ranges (relative to grid row g_lo) of both phase pairs.
  const int64_t e0 = (e_lo - g_lo) * Wp, e1 = e_lo <= e_hi ? (e_hi - g_lo + 1) * Wp : e0;
  const int64_t q0 = (o_lo - g_lo) * Wp, q1 = o_lo <= o_hi ? (o_hi - g_lo + 1) * Wp : q0;
  int32_t* acc0 = tb.acc + pl.lead + (g_lo - m_base) * Wp;
  const int64_t w_gs = 9 * kTap, x_gs = pl.plane_words * 4, row = -4 * Wp;
  for (int64_t g0 = 0; g0 < pl.G; g0 += pl.KG) {
    const int64_t kg = std::min(pl.KG, pl.G - g0);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(xq_n + g0 * pl.plane_words + g_lo * Wp + Wp + 1);
    const bool first = g0 == 0;
    // Strip-outer, channel-slice-inner: the strip's activations stay in cache for all MR-slices.
    for (int64_t g = e0; g < e1; g += V)
      for (int64_t ob = 0; ob < n_ob; ++ob) {
        const int8_t* w = qconv_weight(p, pl, o0 + ob * MR, g0);
        int32_t* a = acc0 + g + ob * MR * ld;
        const int32_t* init = tb.init + ob * MR;
        qconv_ukernel<MR, NR, 2, 2, -1, 6, 2>(w, w_gs, xb + 4 * g, x_gs, row, kg, a, ld, first ? init : nullptr);
        qconv_ukernel<MR, NR, 2, 1, -1, 6, 2>(w + kTap, w_gs, xb + 4 * g, x_gs, row, kg, a + pl.plane, ld,
                                              first ? init + MC : nullptr);
      }
    for (int64_t g = q0; g < q1; g += V)
      for (int64_t ob = 0; ob < n_ob; ++ob) {
        const int8_t* w = qconv_weight(p, pl, o0 + ob * MR, g0);
        int32_t* a = acc0 + g + ob * MR * ld;
        const int32_t* init = tb.init + ob * MR;
        qconv_ukernel<MR, NR, 1, 2, -1, 6, 2>(w + 3 * kTap, w_gs, xb + 4 * g, x_gs, row, kg, a + 2 * pl.plane, ld,
                                              first ? init + 2 * MC : nullptr);
        qconv_ukernel<MR, NR, 1, 1, -1, 6, 2>(w + 4 * kTap, w_gs, xb + 4 * g, x_gs, row, kg, a + 3 * pl.plane, ld,
                                              first ? init + 3 * MC : nullptr);
      }
  }
}

// Zero acc grid row j of the odd-row phase planes (t rows -1 and 2H + 1: the transposed conv's padding).
inline void qconv_zero_odd_row(const QConvPlan& pl, const QConvBuffers& tb, int64_t j) {
  for (int64_t c = 0; c < pl.MC; ++c)
    for (int ph = 2; ph < 4; ++ph) {
      int32_t* r = tb.acc + c * pl.acc_ld + ph * pl.plane + pl.lead + j * pl.Wp;
      std::fill(r, r + pl.Wp, 0);
    }
}

// One band of the upsampling conv: output rows [2 mA, 2 mB) of channels [o0, o_end) of sample n. A
// chunk [ma, mb) of input rows needs the even-row phases of grid rows [ma, mb] and the odd-row ones
// of [ma - 1, mb]; after the first chunk, grid rows ma - 1 and ma come from the previous one.
template <int MR, int NR>
void qconv_up_band(const QConvParams& p, const QConvPlan& pl, const uint32_t* xq_n, const QConvBuffers& tb,
                   int64_t n, int64_t o0, int64_t o_end, int64_t mA, int64_t mB) {
  const int64_t Wp = pl.Wp, n_ob = ceil_div(o_end - o0, MR);
  for (int64_t c = 0; c < pl.MC; ++c)  // the leading guard of every plane (read as t[., -1])
    for (int ph = 0; ph < 4; ++ph) std::fill_n(tb.acc + c * pl.acc_ld + ph * pl.plane, pl.lead, 0);
  for (int64_t ma = mA; ma < mB; ma += pl.R) {
    const int64_t mb = std::min(mB, ma + pl.R), m_base = ma - 1;
    if (ma == mA) {
      qconv_up_phases<MR, NR>(p, pl, xq_n, tb, n_ob, o0, m_base, ma, mb, std::max<int64_t>(ma - 1, 0),
                              std::min(mb, p.H - 1));
      if (ma == 0) qconv_zero_odd_row(pl, tb, 0);
    } else {
      for (int64_t c = 0; c < pl.MC; ++c)  // carry grid rows ma - 1, ma (acc rows R, R + 1) to rows 0, 1
        for (int ph = 0; ph < 4; ++ph) {
          int32_t* pp = tb.acc + c * pl.acc_ld + ph * pl.plane + pl.lead;
          std::memmove(pp, pp + pl.R * Wp, sizeof(int32_t) * 2 * Wp);
        }
      qconv_up_phases<MR, NR>(p, pl, xq_n, tb, n_ob, o0, m_base, ma + 1, mb, ma + 1, std::min(mb, p.H - 1));
    }
    if (mb == p.H) qconv_zero_odd_row(pl, tb, p.H - m_base);
    for (int64_t o = o0; o < o_end; ++o) {
      const int32_t* a = tb.acc + (o - o0) * pl.acc_ld + pl.lead;
      epilogue_up(qconv_epilogue(p, n, o), a, a + pl.plane, a + 2 * pl.plane, a + 3 * pl.plane, Wp, ma, mb, p.W,
                  tb.rows, tb.rows + p.W + 48);
    }
  }
}

// max |x| over one [H, W] plane (row stride sh, column stride sw).
inline float plane_abs_max(const float* x, int64_t H, int64_t W, int64_t sh, int64_t sw) {
  vfloat a = vzero(), b = vzero();  // two chains: max has a latency of several cycles
  for (int64_t y = 0; y < H; ++y) {
    const float* row = x + y * sh;
    int64_t i = 0;
    for (; i + 2 * kVecLen <= W; i += 2 * kVecLen) {
      a = vabsmax(a, vload_strided(row + i * sw, sw, kVecLen));
      b = vabsmax(b, vload_strided(row + (i + kVecLen) * sw, sw, kVecLen));
    }
    for (; i < W; i += kVecLen)  // lanes past W load as zero
      a = vabsmax(a, vload_strided(row + i * sw, sw, int(std::min<int64_t>(kVecLen, W - i))));
  }
  return vhmax(vabsmax(a, b));
}

// Each sample's activation scale of dynamic_scale (qconv_params.h) into inv_scale[n] (as 1 / s[n]) and
// out_scale[n * C_out + o] (p.out_scale[n, o] * s[n]).
template <class ParallelFor>
void dynamic_act_scales(const QConvParams& p, const ParallelFor& pf, float* inv_scale, float* out_scale) {
  std::vector<float> peak(p.N * p.C_in);
  auto channel_peaks = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / p.C_in, i = t % p.C_in;
      const float style = p.styles ? std::fabs(p.styles[n * p.s_sn + i * p.s_sc]) : 1.f;
      const float x_max =
          p.x_peak ? p.x_peak[t] : plane_abs_max(p.x + n * p.x_sn + i * p.x_sc, p.H, p.W, p.x_sh, p.x_sw);
      peak[t] = x_max * style;
    }
  };
  if (p.x_peak)
    channel_peaks(0, p.N * p.C_in);
  else
    pf(0, p.N * p.C_in, std::max<int64_t>(1, (int64_t(1) << 16) / (p.H * p.W)), channel_peaks);
  for (int64_t n = 0; n < p.N; ++n) {
    const float top = *std::max_element(peak.begin() + n * p.C_in, peak.begin() + (n + 1) * p.C_in);
    const float s = std::max(top / float(kQMax), std::numeric_limits<float>::min());
    inv_scale[n] = 1.f / s;
    for (int64_t o = 0; o < p.C_out; ++o) out_scale[n * p.C_out + o] = p.out_scale[n * p.os_sn + o * p.os_sc] * s;
  }
}

}  // namespace detail

// The int8 styled conv forward: writes p.out. pf and blocking.num_threads as for
// modulated_conv2d_forward; MR x NR selects the micro-kernel (MR must divide kQPackMR). Throws
// std::invalid_argument on inconsistent parameters.
template <int MR = kQMR, int NR = kQNR, class ParallelFor>
void qconv2d_forward(const QConvParams& params, const ParallelFor& pf,
                     const QConvBlocking& blocking = QConvBlocking()) {
  static_assert(kQPackMR % MR == 0, "MR must divide the packed tile");
  detail::check_qconv_params(params);
  QConvParams p = params;
  std::vector<float> inv_scale(p.N, 1.f / p.act_scale), out_scale;
  if (p.dynamic_scale) {
    out_scale.resize(p.N * p.C_out);
    detail::dynamic_act_scales(params, pf, inv_scale.data(), out_scale.data());
    p.out_scale = out_scale.data(), p.os_sn = p.C_out, p.os_sc = 1;
  }
  const detail::QConvPlan pl = detail::make_qconv_plan(p, blocking, kQLanes * NR);
  const std::unique_ptr<float[]> rgb_partials = detail::rgb_partials(p, pl.n_ocb);
  uint32_t* xq = static_cast<uint32_t*>(thread_workspace(sizeof(uint32_t) * p.N * pl.G * pl.plane_words, kCallSlot));
  // Planes of ~64 Ki positions per parallel range at least: the quantise pass of a small layer (microseconds)
  // stays on the calling thread instead of paying a second fork / join per call.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / pl.plane_words);
  pf(0, p.N * pl.G, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      detail::quantize_plane(xq + t * pl.plane_words, pl.plane_words, p, inv_scale[t / pl.G], t / pl.G, t % pl.G);
  });
  pf(0, pl.tasks, 1, [&](int64_t t0, int64_t t1) {
    const detail::QConvBuffers tb = detail::carve_qconv(thread_workspace(pl.ws_bytes), pl, p);
    for (int64_t t = t0; t < t1; ++t) {
      const detail::ConvTask k = detail::conv_task_block_major(t, pl.n_bands, p.N, pl.MC, p.C_out, p.H);
      if (k.r0 >= k.r1) continue;
      const uint32_t* xq_n = xq + k.n * pl.G * pl.plane_words;
      detail::qconv_init(p, pl, k.o0, tb.init);
      if (p.upsample) {
        detail::qconv_up_band<MR, NR>(p, pl, xq_n, tb, k.n, k.o0, k.o_end, k.r0, k.r1);
      } else {
        for (int64_t y0 = k.r0; y0 < k.r1; y0 += pl.R)
          detail::qconv_chunk<MR, NR>(p, pl, xq_n, tb, k.n, k.o0, k.o_end, y0, std::min(k.r1, y0 + pl.R),
                                      rgb_partials.get(), k.o0 / pl.MC);
      }
    }
  });
  detail::rgb_reduce(p, rgb_partials.get(), pl.n_ocb, pf);
}

ANYCOST_CPU_NAMESPACE_END
