// Winograd F(2x2, 3x3) path of the fused modulated conv: the plain 3x3 conv (no upsampling, no
// skip) in 16 multiplications per 2x2 output tile and input channel instead of 36.
//
// For every 2x2 output tile t the 4x4 input patch d (rows 2ty-1 .. 2ty+2, cols 2tx-1 .. 2tx+2,
// zero outside the image) is transformed to v = B^T d B, the style-scaled 3x3 filter g of every
// (o, i) to u = G g G^T, and
//     out_tile = A^T [ sum_i u[o, i] (.) v[i, t] ] A
// where (.) is the product per position xi of the 4x4 transform domain. So the conv becomes 16
// independent GEMMs  M[xi][o][t] = sum_i U[xi][o][i] V[xi][i][t], which run on the register-
// blocked micro-kernel of the direct path (conv_ukernel with one tap), followed by the output
// transform A^T M A and the usual epilogue (demodulation scale, noise, bias, leaky ReLU).
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
//
// Blocking (per task = sample n x block of MC output channels x band of tile rows):
//   pack U for the task's channels and all C_in (times the style; demodulation sums of squares of
//   the untransformed style-scaled weights on the way)
//   for each chunk of tiles (tile rows x tile columns; M: 16 x MC x tiles fits acc_bytes)
//     for each block of KC input channels
//       stage the chunk's input window, transform it to V (16 x KC x tiles)
//       for each xi, strip of V tiles, MR-slice of the block: micro-kernel into M
//     output transform + epilogue, write out.
// Vectors run along tiles: the input transform reads each row of the window as even / odd
// columns (vdeinterleave), the output transform interleaves the two output columns back.
//
// Accuracy: the transforms add a few roundings per output (the F(2x2, 3x3) matrices hold only
// 0, +-1 and +-1/2); tests/cpp/test_modulated_conv.cpp checks both paths against a double
// reference with the same bound.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "conv_microkernel.h"
#include "modconv_epilogue.h"
#include "modconv_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

constexpr int kWinoXi = 16;  // positions of the 4x4 transform domain

// Whether the forward takes the Winograd path (force: ModConvBlocking::winograd).
inline bool use_winograd(const ModConvParams& p, int force) {
  if (p.K != 3 || p.upsample || p.skip) return false;
  if (force >= 0) return force == 1;
  // bench/cpp/bench_modulated_conv --winograd (AMX Xeon, AVX-512, 2 threads): 1.24-1.56x the direct
  // path on the config-f layers from 32 px with 32+ channels; a tie at 16 px 512 ch, slower at 8-16
  // channels (the transforms cost as much as the 16 products per tile saved).
  return p.H * p.W >= 32 * 32 && std::min(p.C_in, p.C_out) >= 32;
}

struct WinoPlan {
  int64_t MR, V;
  int64_t TH, TW;                    // output tiles per column / row
  int64_t MC, MCp, n_ocb;            // output-channel blocks
  int64_t KC;                        // input channels per block
  int64_t chunk_rows, chunk_cols;    // tiles per chunk
  int64_t Tp;                        // floats between rows of M and V (tiles per chunk, rounded)
  int64_t in_pitch, in_cs;           // staged input window: row pitch, floats per channel
  int64_t n_bands, tasks;
  size_t ws_bytes;
};

inline WinoPlan make_wino_plan(const ModConvParams& p, const ModConvBlocking& b, int64_t MR,
                               int64_t V) {
  WinoPlan pl{};
  pl.MR = MR;
  pl.V = V;
  pl.TH = ceil_div(p.H, 2);
  pl.TW = ceil_div(p.W, 2);
  const int64_t nt = std::max(1, b.num_threads);
  const int64_t n_ocb = ceil_div(p.C_out, std::max<int64_t>(b.mc, MR));
  pl.MC = round_up(ceil_div(p.C_out, n_ocb), MR);
  pl.n_ocb = ceil_div(p.C_out, pl.MC);
  pl.MCp = pl.MC;

  // Tiles per chunk from the accumulator budget (16 x MCp x tiles floats).
  const int64_t tmax = std::max<int64_t>(kVecLen, b.acc_bytes / (4 * kWinoXi * pl.MCp));
  if (pl.TW <= tmax) {
    pl.chunk_cols = pl.TW;
    pl.chunk_rows = std::max<int64_t>(1, tmax / pl.TW);
  } else {
    pl.chunk_cols = ceil_div(pl.TW, ceil_div(pl.TW, tmax));
    pl.chunk_rows = 1;
  }
  const int64_t base = p.N * pl.n_ocb;
  pl.n_bands = bands_for_threads(base, nt, pl.TH);
  pl.tasks = base * pl.n_bands;
  pl.chunk_rows = std::min(pl.chunk_rows, ceil_div(pl.TH, pl.n_bands));
  const int64_t tiles = pl.chunk_rows * pl.chunk_cols;
  // Full vectors are stored and loaded past the last tile of a chunk: one vector of slack.
  pl.Tp = skew_ld(round_up(tiles, kVecLen) + kVecLen);

  // Input channels per block: the block of V (16 x KC x Tp floats) within xb_bytes, not below 8.
  int64_t KC = std::min<int64_t>(std::max<int64_t>(b.kc, 1), p.C_in);
  while (KC > 8 && 4 * kWinoXi * KC * pl.Tp > b.xb_bytes) KC = ceil_div(KC, 2);
  const int64_t n_kc = ceil_div(p.C_in, KC);
  pl.KC = ceil_div(p.C_in, n_kc);

  // The window of a chunk: 2 rows / cols per tile plus one on each side; the transform reads up
  // to two vectors past a row's last tile.
  pl.in_pitch = 2 * pl.chunk_cols + 2;
  pl.in_cs = skew_ld(round_up((2 * pl.chunk_rows + 2) * pl.in_pitch + 2 * kVecLen + 2, 16));

  size_t ws = 0;
  ws += carve_bytes(sizeof(float) * kWinoXi * pl.MCp * pl.Tp);  // M
  ws += carve_bytes(sizeof(float) * kWinoXi * pl.KC * pl.Tp);   // V
  ws += carve_bytes(sizeof(float) * kWinoXi * pl.MCp * p.C_in);  // U
  ws += carve_bytes(sizeof(float) * pl.KC * pl.in_cs);            // input window
  ws += carve_bytes(sizeof(double) * pl.MCp);                     // sumsq
  pl.ws_bytes = ws;
  return pl;
}

struct WinoBuffers {
  float *M, *V, *U, *win;
  double* sumsq;
};

inline WinoBuffers carve_wino(void* ws, const WinoPlan& pl, const ModConvParams& p) {
  Carver c(ws);
  WinoBuffers t;
  t.M = c.take<float>(kWinoXi * pl.MCp * pl.Tp);
  t.V = c.take<float>(kWinoXi * pl.KC * pl.Tp);
  t.U = c.take<float>(kWinoXi * pl.MCp * p.C_in);
  t.win = c.take<float>(pl.KC * pl.in_cs);
  t.sumsq = c.take<double>(pl.MCp);
  return t;
}

// U[xi][ob][i][m] = (G (s_i W[o, i]) G^T)[xi] for o = o0 + ob*MR + m (zero for o >= o_end), all
// C_in input channels; sumsq[o - o0] = sum over i and taps of (s_i W[o, i])^2. Input channel outer,
// so that each (xi, i) row of MR values is written at once.
inline void pack_wino_weights(float* U, const ModConvParams& p, const WinoPlan& pl,
                              const float* s_n, int64_t o0, int64_t o_end, double* sumsq) {
  constexpr int kMaxMR = 16;
  const int64_t MR = pl.MR, u_xi = pl.MCp * p.C_in;
  for (int64_t ob = 0; ob < pl.MCp / MR; ++ob) {
    const int64_t nm = std::max<int64_t>(0, std::min(MR, o_end - (o0 + ob * MR)));
    float ss[kMaxMR] = {};
    for (int64_t i = 0; i < p.C_in; ++i) {
      const float s = s_n[i * p.s_sc];
      float u[kWinoXi][kMaxMR] = {};
      for (int64_t m = 0; m < nm; ++m) {
        const float* w = p.weight + (o0 + ob * MR + m) * p.w_so + i * p.w_si;
        float g[3][3];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            g[ky][kx] = w[ky * p.w_sh + kx * p.w_sw] * s;
            ss[m] += g[ky][kx] * g[ky][kx];
          }
        float t[4][3];  // G g
        for (int c = 0; c < 3; ++c) {
          t[0][c] = g[0][c];
          t[1][c] = 0.5f * (g[0][c] + g[1][c] + g[2][c]);
          t[2][c] = 0.5f * (g[0][c] - g[1][c] + g[2][c]);
          t[3][c] = g[2][c];
        }
        for (int r = 0; r < 4; ++r) {  // (G g) G^T
          u[4 * r][m] = t[r][0];
          u[4 * r + 1][m] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
          u[4 * r + 2][m] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
          u[4 * r + 3][m] = t[r][2];
        }
      }
      float* d = U + (ob * p.C_in + i) * MR;
      for (int xi = 0; xi < kWinoXi; ++xi) std::memcpy(d + xi * u_xi, u[xi], sizeof(float) * MR);
    }
    for (int64_t m = 0; m < MR; ++m) sumsq[ob * MR + m] = ss[m];
  }
}

// Copy the window rows [y0, y0 + nrows) x cols [x0, x0 + ncols) of kc channels (zero outside the
// image) to dst[i * cs + r * pitch + c]; the rest of each row and of each channel is zeroed.
inline void stage_window(float* dst, int64_t cs, int64_t pitch, const float* src, int64_t sc,
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

// One row of the transform's 4x4 butterfly: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
ANYCOST_INLINE void wino_in_1d(vfloat d0, vfloat d1, vfloat d2, vfloat d3, vfloat* out) {
  out[0] = vsub(d0, d2);
  out[1] = vadd(d1, d2);
  out[2] = vsub(d2, d1);
  out[3] = vsub(d1, d3);
}

// V[xi][i][t] = (B^T d B)[xi] of the staged window of kc channels for the chunk's rows x cols
// tiles (t = row * cols + col); the tiles up to the next whole vector are zero.
inline void wino_input_transform(float* Vb, const WinoPlan& pl, const float* win, int64_t kc,
                                 int64_t rows, int64_t cols) {
  const int64_t v_xi = pl.KC * pl.Tp, tiles = rows * cols, tend = round_up(tiles, kVecLen);
  for (int64_t i = 0; i < kc; ++i) {
    const float* wi = win + i * pl.in_cs;
    float* vi = Vb + i * pl.Tp;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row0 = wi + 2 * r * pl.in_pitch;
      // Full vectors: the lanes past the row's last tile are overwritten by the next row (or by
      // the zero fill below).
      for (int64_t c = 0; c < cols; c += kVecLen) {
        vfloat t[4][4];  // B^T d, by row of d
        vfloat d[4][4];
        for (int k = 0; k < 4; ++k) {
          const float* q = row0 + k * pl.in_pitch + 2 * c;
          vdeinterleave(vload(q), vload(q + kVecLen), d[k][0], d[k][1]);
          vdeinterleave(vload(q + 2), vload(q + 2 + kVecLen), d[k][2], d[k][3]);
        }
        for (int k = 0; k < 4; ++k) {
          vfloat col[4];
          wino_in_1d(d[0][k], d[1][k], d[2][k], d[3][k], col);
          for (int a = 0; a < 4; ++a) t[a][k] = col[a];
        }
        float* dst = vi + r * cols + c;
        for (int a = 0; a < 4; ++a) {
          vfloat v[4];
          wino_in_1d(t[a][0], t[a][1], t[a][2], t[a][3], v);
          for (int b2 = 0; b2 < 4; ++b2) vstore(dst + (4 * a + b2) * v_xi, v[b2]);
        }
      }
    }
    for (int xi = 0; xi < kWinoXi; ++xi)
      std::memset(vi + xi * v_xi + tiles, 0, sizeof(float) * (tend - tiles));
  }
}

// Output transform and epilogue of channel e for the chunk's tiles: tile rows [tr0, tr0 + rows),
// tile cols [c0, c0 + cols); mo points at M[0][o][0].
inline void wino_output(const EpilogueChannel& ec, const WinoPlan& pl, const float* mo,
                        const ModConvParams& p, int64_t tr0, int64_t rows, int64_t c0,
                        int64_t cols) {
  const EpilogueRegs e(ec);
  const int64_t m_xi = pl.MCp * pl.Tp;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t y = 2 * (tr0 + r);
    for (int64_t c = 0; c < cols; c += kVecLen) {
      const float* m = mo + r * cols + c;
      vfloat s[2][4];  // A^T M, by column of M
      for (int k = 0; k < 4; ++k) {
        const vfloat m0 = vload(m + k * m_xi), m1 = vload(m + (4 + k) * m_xi),
                     m2 = vload(m + (8 + k) * m_xi), m3 = vload(m + (12 + k) * m_xi);
        s[0][k] = vadd(vadd(m0, m1), m2);
        s[1][k] = vsub(vsub(m1, m2), m3);
      }
      const int64_t x = 2 * (c0 + c);
      const int64_t nx = std::min<int64_t>(2 * std::min<int64_t>(kVecLen, cols - c), p.W - x);
      for (int a = 0; a < 2 && y + a < p.H; ++a) {
        const vfloat y0 = vadd(vadd(s[a][0], s[a][1]), s[a][2]);
        const vfloat y1 = vsub(vsub(s[a][1], s[a][2]), s[a][3]);
        vfloat lo, hi;
        vinterleave(y0, y1, lo, hi);
        finish_store(e, lo, y + a, x, int(std::min<int64_t>(kVecLen, nx)), nullptr);
        if (nx > kVecLen) finish_store(e, hi, y + a, x + kVecLen, int(nx - kVecLen), nullptr);
      }
    }
  }
}

// One chunk of tiles (rows [tr0, tr0 + rows) x cols [c0, c0 + cols)) of channels [o0, o_end).
template <int MR, int NR>
void wino_chunk(const ModConvParams& p, const WinoPlan& pl, const WinoBuffers& tb, int64_t n,
                int64_t o0, int64_t o_end, int64_t tr0, int64_t rows, int64_t c0, int64_t cols) {
  constexpr int64_t V = kVecLen * NR;
  const float* x_n = p.x + n * p.x_sn;
  const int64_t tiles = rows * cols;
  const int64_t n_ob = ceil_div(o_end - o0, MR);
  const int64_t m_xi = pl.MCp * pl.Tp, v_xi = pl.KC * pl.Tp, u_xi = pl.MCp * p.C_in;
  for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
    const int64_t kc = std::min(pl.KC, p.C_in - i0);
    stage_window(tb.win, pl.in_cs, pl.in_pitch, x_n + i0 * p.x_sc, p.x_sc, p.x_sh, p.x_sw, kc,
                 2 * tr0 - 1, 2 * rows + 2, 2 * c0 - 1, 2 * cols + 2, p.H, p.W);
    wino_input_transform(tb.V, pl, tb.win, kc, rows, cols);
    const bool accum = i0 > 0;
    for (int xi = 0; xi < kWinoXi; ++xi) {
      const float* u = tb.U + xi * u_xi + i0 * MR;
      const float* v = tb.V + xi * v_xi;
      float* m = tb.M + xi * m_xi;
      for (int64_t g = 0; g < tiles; g += V) {
        const int64_t nvec = std::min<int64_t>(NR, ceil_div(tiles - g, kVecLen));
        for (int64_t ob = 0; ob < n_ob; ++ob) {
          const float* uo = u + ob * p.C_in * MR;
          float* mo = m + ob * MR * pl.Tp + g;
          if (nvec == NR) {
            conv_ukernel<MR, NR, 1, 1, 1>(uo, MR, v + g, pl.Tp, 0, kc, mo, pl.Tp, accum);
            continue;
          }
          int64_t j = 0;  // the chunk's last strip: pairs of vectors, then one
          for (; j + 2 <= nvec; j += 2)
            conv_ukernel<MR, 2, 1, 1, 1>(uo, MR, v + g + j * kVecLen, pl.Tp, 0, kc,
                                         mo + j * kVecLen, pl.Tp, accum);
          if (j < nvec)
            conv_ukernel<MR, 1, 1, 1, 1>(uo, MR, v + g + j * kVecLen, pl.Tp, 0, kc,
                                         mo + j * kVecLen, pl.Tp, accum);
        }
      }
    }
  }
  for (int64_t o = o0; o < o_end; ++o)
    wino_output(make_epilogue(p, n, o, tb.sumsq[o - o0], tr0 == 0 && c0 == 0), pl,
                tb.M + (o - o0) * pl.Tp, p, tr0, rows, c0, cols);
}

template <int MR, int NR, class ParallelFor>
void modulated_conv2d_winograd(const ModConvParams& p, const ParallelFor& pf,
                               const ModConvBlocking& blocking) {
  const WinoPlan pl = make_wino_plan(p, blocking, MR, kVecLen * NR);
  const int64_t bands = pl.n_bands, n_ocb = pl.n_ocb;
  pf(0, pl.tasks, 1, [&](int64_t t0, int64_t t1) {
    const WinoBuffers tb = carve_wino(thread_workspace(pl.ws_bytes), pl, p);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t band = t % bands;
      const int64_t ocb = (t / bands) % n_ocb;
      const int64_t n = t / (bands * n_ocb);
      const int64_t o0 = ocb * pl.MC, o_end = std::min(p.C_out, o0 + pl.MC);
      const int64_t rA = band * pl.TH / bands, rB = (band + 1) * pl.TH / bands;
      if (rA >= rB) continue;
      pack_wino_weights(tb.U, p, pl, p.styles + n * p.s_sn, o0, o_end, tb.sumsq);
      for (int64_t tr0 = rA; tr0 < rB; tr0 += pl.chunk_rows)
        for (int64_t c0 = 0; c0 < pl.TW; c0 += pl.chunk_cols)
          wino_chunk<MR, NR>(p, pl, tb, n, o0, o_end, tr0, std::min(pl.chunk_rows, rB - tr0), c0,
                             std::min(pl.chunk_cols, pl.TW - c0));
    }
  });
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
