// Winograd path of the fused modulated conv's upsampling layer (stride-2 transposed 3x3 conv, then the [1, 3, 3, 1]
// blur): the four sub-pixel phases of the transposed conv as F(M x M, 2 x 2) convolutions (M = 2 or 4) sharing one
// input transform.
//
// On the input grid (m, n) the transposed conv's output t[2m + py][2n + px] (phase (py, px)) is, along each dim,
//   even phase: t[2m]     = w[0] x[m] + w[2] x[m - 1]
//   odd phase:  t[2m + 1] = w[1] x[m]
// so each phase is a 2 x 2 correlation y[i] = sum_k g[k] d[i + k] over d = x[m - 1 .. m] with g = (w[2], w[0])
// (even) or (0, w[1]) (odd) per dim. An M x M tile of grid points (rows gy .. gy + M - 1) reads the T x T input
// patch (T = M + 1) x[gy - 1 .. gy + M - 1]; its transform v = B^T d B is shared by the four phases, each with its
// own transformed filter u = G g G^T:
//     phase_tile = A^T [ sum_i u_phase[o, i] (.) v[i] ] A.
// The odd phases' g[0] = 0 makes row 0 (odd rows) and column 0 (odd columns) of their u zero, and those products
// are skipped: per tile, input and output channel 25 of 4 x 9 (F(2x2)) or 81 of 4 x 25 (F(4x4)), against 36 or 144
// for the direct sub-pixel kernels (1.44x or 1.78x fewer).
//   F(2, 2), points 0, 1, inf:
//     B^T = [-1 1 0; 0 1 0; 0 -1 1]   G = [-1 0; 1 1; 0 1]   A^T = [1 1 0; 0 1 1]
//   F(4, 2), points 0, 1, -1, 2, inf:
//     B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
//     G   = [1/2 0; -1/2 -1/2; -1/6 1/6; 1/6 1/3; 0 1]
//     A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
//
// Blocking (per task = sample n x block of MC output channels x band of grid rows [mA, mB)):
//   pack U for the task's 4 x MC phase rows and all C_in (times the style; demodulation sums of squares of the
//   style-scaled 3x3 weights on the way)
//   for each chunk of tile rows (all tile columns; grid rows from mA - 1, M per tile row)
//     for each block of KC input channels: stage the window, transform it to V, the GEMMs of the nonzero
//       (xi, phase) pairs into M (T^2 x 4 MC x tiles)
//     per channel: the four phases' output transforms into a scratch of phase planes (the two grid rows the
//       previous chunk carried over first), epilogue_up (the blur, demodulation, noise, bias, activation) on the
//       output rows whose phase rows are all there, the last two grid rows carried to the next chunk.
//
// Accuracy: F(2x2)'s entries are 0 and +-1 (the direct path's bound, 1e-5 of the outputs' rms, against a double
// reference); F(4x4)'s 1/6 and 8 amplify the roundings like F(4x4, 3x3)'s, and its tests allow 1e-4
// (tests/cpp/test_modulated_conv.cpp).
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "conv_microkernel.h"
#include "modconv_epilogue.h"
#include "modconv_pack.h"
#include "modconv_params.h"
#include "modconv_winograd.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

// The tile size of the upsampling conv's Winograd path for p (0: the direct sub-pixel kernels). force is
// ModConvBlocking::up_winograd: -1 automatic, 0 never, 2 or 4 that tile size.
//
// Automatic: F(4x4, 2x2) from 256 x 256 px input with 48+ channels each side and from 512 x 512 px with 24+.
// bench/cpp/bench_modulated_conv --winograd (Zen 4, AVX-512, 2 threads; direct / F(2x2) / F(4x4) in ms, three
// runs): 512 -> 1024 px 64 -> 32 ch 66-74 / 62-69 / 52-54, 48 -> 24 ch 39-51 / 36 / 32-40, 32 -> 16 ch 23 / 21-24 /
// 18-22, 16 -> 8 ch 7.4-8.8 / 7.6-7.7 / 7.7-8.6; 256 -> 512 px 128 -> 64 ch 61-103 / 56-92 / 49-54, 96 -> 48 ch
// 34-36 / 32-33 / 31-34, 32 -> 16 ch 4.5-5.3 / 4.9-5.0 / 5.0; 128 -> 256 px 256 -> 128 ch 52.7 / 49.3-49.9 /
// 54.6-55.8, 64 -> 32 ch 3.8-4.1 / 3.9-4.0 / 4.6-4.8. On the wide layers below (1 thread): 64 -> 128 px 512 -> 256
// ch 99 / 107 / 129, 32 -> 64 px 512 -> 512 ch 55 / 71 / 87. The transformed weights are 4 (M + 1)^2 / 9 times the
// direct path's packed ones (4x for F(2x2), 11x for F(4x4)), built per sample because the style is folded into them,
// and the GEMMs stream them from memory (perf, F(4x4) at 32 px 512 ch: building them a third of the time, the GEMM
// stalled on their loads), so the fewer products (1.44x for F(2x2), 1.78x for F(4x4)) pay only where many
// positions share each weight.
inline int winograd_up_tile(const ModConvParams& p, int force) {
  if (!p.upsample || p.K != 3) return 0;
  if (force >= 0) return force == 2 || force == 4 ? force : 0;
  const int64_t P = p.H * p.W, c = std::min(p.C_in, p.C_out);
  return (P >= 256 * 256 && c >= 48) || (P >= 512 * 512 && c >= 24) ? 4 : 0;
}

// The 1-D transforms of F(M, 2): load (the T column phases of kVecLen tiles: q[M j + c], c < T), in (T -> T, B^T),
// out (T -> M, A^T; Zero0: m[0] is zero and not read), weight (2 -> T, G; on MR channels at once).
template <int M>
struct WinoUpTile;

template <>
struct WinoUpTile<2> {
  static constexpr int M = 2, T = 3;
  static ANYCOST_INLINE void load(const float* q, vfloat* d) {
    vfloat p[4];
    load_phases<2>(q, p);
    d[0] = p[0], d[1] = p[1], d[2] = p[2];
  }
  static ANYCOST_INLINE void in(const vfloat* d, vfloat* o) {
    o[0] = vsub(d[1], d[0]);
    o[1] = d[1];
    o[2] = vsub(d[2], d[1]);
  }
  template <bool Zero0>
  static ANYCOST_INLINE void out(const vfloat* m, vfloat* y) {
    y[0] = Zero0 ? m[1] : vadd(m[0], m[1]);
    y[1] = vadd(m[1], m[2]);
  }
  template <int MR>
  static ANYCOST_INLINE void weight(const float* g0, const float* g1, float (*u)[MR]) {
    for (int m = 0; m < MR; ++m) {
      u[0][m] = -g0[m];
      u[1][m] = g0[m] + g1[m];
      u[2][m] = g1[m];
    }
  }
};

template <>
struct WinoUpTile<4> {
  static constexpr int M = 4, T = 5;
  static ANYCOST_INLINE void load(const float* q, vfloat* d) {
    phases4(q, d);
    vfloat next[4];
    phases4(q + 4, next);
    d[4] = next[0];
  }
  static ANYCOST_INLINE void in(const vfloat* d, vfloat* o) {
    const vfloat two = vset1(2.f), m2 = vset1(-2.f);
    const vfloat o3 = vsub(d[3], d[1]);
    o[0] = vfma(two, vsub(d[0], d[2]), o3);
    o[1] = vfma(m2, d[1], vsub(d[3], d[2]));
    o[2] = vfma(two, d[1], vfma(vset1(-3.f), d[2], d[3]));
    o[3] = o3;
    o[4] = vsub(vfma(m2, o3, d[4]), d[2]);
  }
  template <bool Zero0>
  static ANYCOST_INLINE void out(const vfloat* m, vfloat* y) {
    const vfloat s = vadd(m[1], m[2]), d = vsub(m[1], m[2]);
    y[0] = Zero0 ? vadd(s, m[3]) : vadd(vadd(m[0], s), m[3]);
    y[1] = vfma(vset1(2.f), m[3], d);
    y[2] = vfma(vset1(4.f), m[3], s);
    y[3] = vadd(vfma(vset1(8.f), m[3], d), m[4]);
  }
  template <int MR>
  static ANYCOST_INLINE void weight(const float* g0, const float* g1, float (*u)[MR]) {
    for (int m = 0; m < MR; ++m) {
      u[0][m] = 0.5f * g0[m];
      u[1][m] = -0.5f * (g0[m] + g1[m]);
      u[2][m] = (g1[m] - g0[m]) * (1.f / 6.f);
      u[3][m] = (g0[m] + 2.f * g1[m]) * (1.f / 6.f);
      u[4][m] = g1[m];
    }
  }
};

// Whether phase ph (2 py + px: ee, eo, oe, oo) has a nonzero u at transform position xi = T a + b.
template <int T>
inline bool up_phase_active(int ph, int64_t xi) {
  return (!(ph & 2) || xi / T != 0) && (!(ph & 1) || xi % T != 0);
}

struct WinoUpPlan {
  int64_t M, XI;              // tile size (grid points per side), transform positions (M + 1)^2
  int64_t TW;                 // tile columns: grid columns 0 .. M TW - 1 (the epilogue reads 0 .. W)
  int64_t MC, MCp, n_ocb;     // output-channel blocks (the GEMMs' rows: 4 phases x MCp)
  int64_t KC;                 // input channels per block
  int64_t Rt;                 // tile rows per chunk (M Rt grid rows)
  int64_t Tp;                 // floats between rows of M and V
  int64_t in_pitch, in_cs;    // staged input window: row pitch, floats per channel
  int64_t Wp, plane;          // phase scratch: row pitch, floats per phase plane (M Rt + 2 rows)
  int64_t n_bands, tasks;
  size_t ws_bytes;
};

inline WinoUpPlan make_wino_up_plan(const ModConvParams& p, const ModConvBlocking& b, int64_t MR, int M) {
  WinoUpPlan pl{};
  pl.M = M;
  pl.XI = int64_t(M + 1) * (M + 1);
  pl.TW = ceil_div(p.W + 1, M);
  const int64_t nt = std::max(1, b.num_threads);
  const ModConvBudget& bb = b.up_wino;
  const int64_t n_ocb = ceil_div(p.C_out, std::max<int64_t>(bb.mc, MR));
  pl.MC = round_up(ceil_div(p.C_out, n_ocb), MR);
  pl.n_ocb = ceil_div(p.C_out, pl.MC);
  pl.MCp = pl.MC;

  const int64_t base = p.N * pl.n_ocb;
  pl.n_bands = bands_for_threads(base, nt, p.H);
  pl.tasks = base * pl.n_bands;
  // A band of grid rows [mA, mB) computes grid rows mA - 1 .. mB: the fewest chunks whose M (XI x 4 MCp x tiles)
  // fits the accumulator budget, then the fewest tile rows per chunk that cover the band in that many.
  const int64_t band_grid = ceil_div(p.H, pl.n_bands) + 2;
  const int64_t rt_max = std::max<int64_t>(1, bb.acc_bytes / (4 * pl.XI * 4 * pl.MCp * pl.TW));
  const int64_t chunks = ceil_div(ceil_div(band_grid, M), rt_max);
  pl.Rt = ceil_div(ceil_div(band_grid, M), chunks);
  pl.Tp = skew_ld(round_up(pl.Rt * pl.TW, kVecLen) + kVecLen);

  int64_t KC = std::min<int64_t>(std::max<int64_t>(bb.kc, 1), p.C_in);
  while (KC > 8 && 4 * pl.XI * KC * pl.Tp > bb.xb_bytes) KC = ceil_div(KC, 2);
  pl.KC = ceil_div(p.C_in, ceil_div(p.C_in, KC));

  // The window of a chunk: input rows and cols from -1, M per tile plus one; the column phases of a row's last
  // tiles read up to 2 M vectors + M floats past them.
  pl.in_pitch = M * pl.TW + 1;
  pl.in_cs = skew_ld(round_up((M * pl.Rt + 1) * pl.in_pitch + 2 * M * kVecLen + M, 16));
  // Output-transform rows are stored as whole vectors of tiles; the epilogue reads a vector past column W.
  pl.Wp = M * round_up(pl.TW, kVecLen) + kVecLen;
  pl.plane = (M * pl.Rt + 2) * pl.Wp;

  size_t ws = 0;
  ws += carve_bytes(sizeof(float) * pl.XI * 4 * pl.MCp * pl.Tp);  // M
  ws += carve_bytes(sizeof(float) * pl.XI * pl.KC * pl.Tp);       // V
  ws += carve_bytes(sizeof(float) * pl.XI * 4 * pl.MCp * p.C_in);  // U
  ws += carve_bytes(sizeof(float) * 4 * pl.XI * pl.KC * MR);      // a block of U being packed
  ws += carve_bytes(sizeof(float) * pl.KC * pl.in_cs);            // input window
  ws += carve_bytes(sizeof(double) * pl.MCp);                     // sumsq
  ws += carve_bytes(sizeof(float) * 4 * pl.plane);                // phase scratch of one channel
  ws += carve_bytes(sizeof(float) * pl.MCp * 4 * 2 * pl.Wp);      // carried grid rows
  ws += carve_bytes(sizeof(float) * 2 * (p.W_out() + 32));        // epilogue rows
  pl.ws_bytes = ws;
  return pl;
}

struct WinoUpBuffers {
  float *M, *V, *U, *stage, *win;
  double* sumsq;
  float *scratch, *carry, *rows;
};

inline WinoUpBuffers carve_wino_up(void* ws, const WinoUpPlan& pl, const ModConvParams& p, int64_t MR) {
  Carver c(ws);
  WinoUpBuffers t;
  t.M = c.take<float>(pl.XI * 4 * pl.MCp * pl.Tp);
  t.V = c.take<float>(pl.XI * pl.KC * pl.Tp);
  t.U = c.take<float>(pl.XI * 4 * pl.MCp * p.C_in);
  t.stage = c.take<float>(4 * pl.XI * pl.KC * MR);
  t.win = c.take<float>(pl.KC * pl.in_cs);
  t.sumsq = c.take<double>(pl.MCp);
  t.scratch = c.take<float>(4 * pl.plane);
  t.carry = c.take<float>(pl.MCp * 4 * 2 * pl.Wp);
  t.rows = c.take<float>(2 * (p.W_out() + 32));
  return t;
}

// U[xi][ph MCp + o - o0][i] = (G g_ph G^T)[xi] of the style-scaled filter s_i W[o, i] for o = o0 + ob MR + m (zero
// for o >= o_end), all C_in input channels, by block of KC input channels: at U + i0 XI 4 MCp + xi 4 MCp kc +
// (ph MCp / MR + ob) kc MR + (i - i0) MR + m, so that the GEMMs of a block read one stream per slice.
// sumsq[o - o0] = sum over i and the 9 taps of (s_i W[o, i])^2. The transforms run on all MR channels of a slice
// at once (the inner loops over m vectorise) into stage ([phase][xi][i - i0][MR] of a block: 4 XI KC MR floats),
// copied to U a block at a time. Either way the packing is bound by writing U: perf, F(4x4, 2x2) at 32 px 512 ch,
// written in place (4 XI streams per input channel, the stores 85% of the packing) 37% of the layer's time,
// staged 34% with the copies.
template <int M, int MR>
void pack_wino_up_weights(float* U, float* stage, const ModConvParams& p, const WinoUpPlan& pl, const float* s_n,
                          int64_t o0, int64_t o_end, double* sumsq) {
  using Tile = WinoUpTile<M>;
  constexpr int T = Tile::T, XI = T * T;
  const int64_t slices = pl.MCp / MR, R4 = 4 * pl.MCp;
  const auto transform = [](const float* g0, const float* g1, float (*u)[MR]) { Tile::template weight<MR>(g0, g1, u); };
  static constexpr float kZero[MR] = {};
  for (int64_t ob = 0; ob < slices; ++ob) {
    const int64_t nm = std::max<int64_t>(0, std::min<int64_t>(MR, o_end - (o0 + ob * MR)));
    float ss[MR] = {};
    for (int64_t i = 0; i < p.C_in; ++i) {
      const float s = s_n[i * p.s_sc];
      float g[3][3][MR] = {};
      for (int64_t m = 0; m < nm; ++m) {
        const float* w = p.weight + (o0 + ob * MR + m) * p.w_so + i * p.w_si;
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) g[ky][kx][m] = w[ky * p.w_sh + kx * p.w_sw] * s;
      }
      for (int ky = 0; ky < 3; ++ky)
        for (int kx = 0; kx < 3; ++kx)
          for (int m = 0; m < MR; ++m) ss[m] += g[ky][kx][m] * g[ky][kx][m];
      // Along a dim, phase parity q takes taps (tap at m - 1, tap at m): even (2, 0), odd (none, 1).
      float t[2][3][T][MR];  // [column parity][filter row][transformed column]
      for (int ky = 0; ky < 3; ++ky) {
        transform(g[ky][2], g[ky][0], t[0][ky]);
        transform(kZero, g[ky][1], t[1][ky]);
      }
      const int64_t i0 = i / pl.KC * pl.KC, kc = std::min(pl.KC, p.C_in - i0);
      for (int ph = 0; ph < 4; ++ph) {
        const int py = ph >> 1, px = ph & 1;
        float* d = stage + (ph * XI * kc + i - i0) * MR;
        for (int c = 0; c < T; ++c) {  // column c, transformed along the rows
          float col[T][MR];
          if (py == 0)
            transform(t[px][2][c], t[px][0][c], col);
          else
            transform(kZero, t[px][1][c], col);
          for (int r = 0; r < T; ++r) std::memcpy(d + (r * T + c) * kc * MR, col[r], sizeof(float) * MR);
        }
      }
      if (i + 1 == i0 + kc)  // the block's slices, one contiguous kc x MR run per (phase, xi)
        for (int ph = 0; ph < 4; ++ph)
          for (int xi = 0; xi < XI; ++xi)
            std::memcpy(U + i0 * XI * R4 + xi * R4 * kc + (ph * slices + ob) * kc * MR,
                        stage + (ph * XI + xi) * kc * MR, sizeof(float) * kc * MR);
    }
    for (int m = 0; m < MR; ++m) sumsq[ob * MR + m] = ss[m];
  }
}

// The output transform of one phase plane (odd rows / odd columns: OddRow / OddCol, whose transform row / column 0
// was never computed) for rows x cols tiles of M (mo points at M[0][row of this phase and channel][0], m_xi
// floats between transform positions) into grid rows 0 .. M rows - 1 of dst (row pitch Wp).
template <int M, bool OddRow, bool OddCol>
void wino_up_phase_out(const float* mo, int64_t m_xi, float* dst, int64_t Wp, int64_t rows, int64_t cols) {
  using Tile = WinoUpTile<M>;
  constexpr int T = Tile::T;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; c += kVecLen) {
      const float* m = mo + r * cols + c;
      vfloat s[M][T];  // A^T M: [output row a][column]
      for (int col = OddCol ? 1 : 0; col < T; ++col) {
        vfloat in[T], o[M];
        for (int k = OddRow ? 1 : 0; k < T; ++k) in[k] = vload(m + (k * T + col) * m_xi);
        Tile::template out<OddRow>(in, o);
        for (int a = 0; a < M; ++a) s[a][col] = o[a];
      }
      for (int a = 0; a < M; ++a) {
        vfloat yv[M], row[M];
        Tile::template out<OddCol>(s[a], yv);
        interleave_columns(yv, row, M);
        float* d = dst + (M * r + a) * Wp + M * c;
        for (int q = 0; q < M; ++q) vstore(d + q * kVecLen, row[q]);
      }
    }
  }
}

// One band of the upsampling conv on this path: output rows [2 mA, 2 mB) of channels [o0, o_end) of sample n.
template <int M, int MR, int NR>
void wino_up_band(const ModConvParams& p, const WinoUpPlan& pl, const WinoUpBuffers& tb, int64_t n, int64_t o0,
                  int64_t o_end, int64_t mA, int64_t mB) {
  constexpr int T = WinoUpTile<M>::T, XI = T * T;
  constexpr int64_t V = kVecLen * NR;
  const float* x_n = p.x + n * p.x_sn;
  const int64_t n_ob = ceil_div(o_end - o0, MR), slices = pl.MCp / MR, R4 = 4 * pl.MCp;
  const int64_t m_xi = R4 * pl.Tp, v_xi = pl.KC * pl.Tp, Wp = pl.Wp;
  int64_t m0 = mA;
  for (int64_t g0 = mA - 1; m0 < mB;) {
    // The chunk's grid rows [g0, g0 + rg): Rt tile rows, fewer where the band needs fewer (up to grid row mB).
    const int64_t rt = std::min(pl.Rt, ceil_div(mB + 1 - g0, M)), rg = M * rt, tiles = rt * pl.TW;
    for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
      const int64_t kc = std::min(pl.KC, p.C_in - i0);
      pack_input_window(tb.win, pl.in_cs, pl.in_pitch, x_n + i0 * p.x_sc, p.x_sc, p.x_sh, p.x_sw, kc, g0 - 1,
                        rg + 1, -1, M * pl.TW + 1, p.H, p.W);
      wino_input_transform<WinoUpTile<M>>(tb.V, v_xi, pl.Tp, tb.win, pl.in_pitch, pl.in_cs, kc, rt, pl.TW);
      const bool accum = i0 > 0;
      for (int64_t xi = 0; xi < XI; ++xi) {
        const float* u = tb.U + i0 * XI * R4 + xi * R4 * kc;
        const float* v = tb.V + xi * v_xi;
        float* m = tb.M + xi * m_xi;
        for (int64_t g = 0; g < tiles; g += V) {
          const int64_t nvec = std::min<int64_t>(NR, ceil_div(tiles - g, kVecLen));
          for (int ph = 0; ph < 4; ++ph) {
            if (!up_phase_active<T>(ph, xi)) continue;
            for (int64_t ob = 0; ob < n_ob; ++ob) {
              const int64_t s = ph * slices + ob;
              wino_strip<MR, NR>(u + s * kc * MR, v + g, m + s * MR * pl.Tp + g, pl.Tp, kc, nvec, accum);
            }
          }
        }
      }
    }
    // Output rows 2m, 2m + 1 read the phases of grid rows m - 1 .. m + 1. The scratch's row 0 is grid row m0 - 1:
    // the first chunk's g0, later the second last of the previous chunk (carried).
    const bool first = g0 == mA - 1;
    const int64_t m1 = std::min(mB, g0 + rg - 1), base = first ? 0 : 2;
    for (int64_t o = o0; o < o_end; ++o) {
      float* carry = tb.carry + (o - o0) * 8 * Wp;
      float* planes[4];
      for (int ph = 0; ph < 4; ++ph) planes[ph] = tb.scratch + ph * pl.plane;
      if (!first)
        for (int ph = 0; ph < 4; ++ph) std::memcpy(planes[ph], carry + ph * 2 * Wp, sizeof(float) * 2 * Wp);
      const float* mo = tb.M + (o - o0) * pl.Tp;
      const int64_t mp = pl.MCp * pl.Tp;  // between the phases' rows of M
      wino_up_phase_out<M, false, false>(mo, m_xi, planes[0] + base * Wp, Wp, rt, pl.TW);
      wino_up_phase_out<M, false, true>(mo + mp, m_xi, planes[1] + base * Wp, Wp, rt, pl.TW);
      wino_up_phase_out<M, true, false>(mo + 2 * mp, m_xi, planes[2] + base * Wp, Wp, rt, pl.TW);
      wino_up_phase_out<M, true, true>(mo + 3 * mp, m_xi, planes[3] + base * Wp, Wp, rt, pl.TW);
      const EpilogueChannel e = make_epilogue(p, n, o, tb.sumsq[o - o0], m0 == 0);
      epilogue_up(e, planes[0], planes[1], planes[2], planes[3], Wp, m0, m1, p.W, tb.rows,
                  tb.rows + p.W_out() + 32);
      if (m1 < mB)
        for (int ph = 0; ph < 4; ++ph)
          std::memcpy(carry + ph * 2 * Wp, planes[ph] + (base + rg - 2) * Wp, sizeof(float) * 2 * Wp);
    }
    m0 = m1;
    g0 += rg;
  }
}

template <int M, int MR, int NR, class ParallelFor>
void winograd_up_tasks(const ModConvParams& p, const ParallelFor& pf, const ModConvBlocking& blocking) {
  const WinoUpPlan pl = make_wino_up_plan(p, blocking, MR, M);
  pf(0, pl.tasks, 1, [&](int64_t t0, int64_t t1) {
    const WinoUpBuffers tb = carve_wino_up(thread_workspace(pl.ws_bytes), pl, p, MR);
    int64_t packed_n = -1, packed_o0 = -1;  // whose U tb holds: the bands of a block that follow share it
    for (int64_t t = t0; t < t1; ++t) {
      const ConvTask k = conv_task(t, pl.n_bands, pl.n_ocb, pl.MC, p.C_out, p.H);
      if (k.r0 >= k.r1) continue;
      if (k.n != packed_n || k.o0 != packed_o0) {
        pack_wino_up_weights<M, MR>(tb.U, tb.stage, p, pl, p.styles + k.n * p.s_sn, k.o0, k.o_end, tb.sumsq);
        packed_n = k.n, packed_o0 = k.o0;
      }
      wino_up_band<M, MR, NR>(p, pl, tb, k.n, k.o0, k.o_end, k.r0, k.r1);
    }
  });
}

// The upsampling conv's Winograd path with tile size `tile` (2 or 4; see winograd_up_tile).
template <int MR, int NR, class ParallelFor>
void modulated_conv2d_winograd_up(const ModConvParams& p, const ParallelFor& pf, const ModConvBlocking& blocking,
                                  int tile) {
  if (tile == 4)
    winograd_up_tasks<4, MR, NR>(p, pf, blocking);
  else
    winograd_up_tasks<2, MR, NR>(p, pf, blocking);
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
