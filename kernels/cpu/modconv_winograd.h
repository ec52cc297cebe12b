// Winograd path of the fused modulated conv: the plain 3x3 conv (no upsampling, no skip) as
// F(2x2, 3x3) (16 products per 2x2 output tile and input channel instead of 36) or F(4x4, 3x3)
// (36 per 4x4 tile instead of 144).
//
// For every M x M output tile t the T x T input patch d (T = M + 2; rows M ty - 1 .. M ty + M,
// cols likewise, zero outside the image) is transformed to v = B^T d B, the 3x3 filter g of
// every (o, i) to u = G g G^T, and
//     out_tile = A^T [ sum_i u[o, i] (.) v[i, t] ] A
// where (.) is the product per position xi of the T x T transform domain. The style goes on the input (d of input
// channel i times s_i, in v) and the demodulation is a per-output-channel scale, so u depends on the weight only:
// built once per call and channel block, or once for all calls from the cache of wino_weight_cache.h when the
// caller names the weight's values (ModConvParams::weight_id). So the conv becomes T*T
// independent GEMMs  M[xi][o][t] = sum_i U[xi][o][i] V[xi][i][t], which run on the register-
// blocked micro-kernel of the direct path (conv_ukernel with one tap), followed by the output
// transform A^T M A and the usual epilogue (demodulation scale, noise, bias, leaky ReLU).
//
//   F(2x2, 3x3), points 0, 1, -1:
//     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//     A^T = [1 1 1 0; 0 1 -1 -1]
//   F(4x4, 3x3), points 0, 1, -1, 2, -2:
//     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
//
// Blocking (per task = sample n x block of MC output channels x band of tile rows; the tasks of a block run back
// to back over the samples, conv_task_block_major):
//   U of the task's channels and all C_in (from the cache, or packed; the per-(o, i) sums of squares of the
//   untransformed weight on the way, which give each sample's demodulation with its styles)
//   for each chunk of tiles (tile rows x tile columns; M: T*T x MC x tiles fits acc_bytes)
//     for each block of KC input channels
//       stage the chunk's input window (pack_input_window), transform it to V (T*T x KC x tiles)
//       for each xi, strip of tiles, MR-slice of the block: micro-kernel into M
//     output transform + epilogue, write out.
// Vectors run along tiles: the input transform reads each row of the window as M column phases
// (vdeinterleave), the output transform interleaves the M output columns back.
//
// Accuracy: the F(2x2) matrices hold only 0, +-1 and +-1/2, and it meets the direct path's bound
// against a double reference (1e-5 of the outputs' scale); F(4x4)'s larger entries (up to 8 and
// 1/24) amplify the roundings to 1-2e-5 of the outputs' rms, and its tests allow 1e-4
// (tests/cpp/test_modulated_conv.cpp).
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "conv_microkernel.h"
#include "modconv_epilogue.h"
#include "modconv_pack.h"
#include "modconv_params.h"
#include "modconv_rgb.h"
#include "parallel.h"
#include "simd.h"
#include "wino_weight_cache.h"

ANYCOST_CPU_NAMESPACE_BEGIN
namespace detail {

// The output tile size of the Winograd path for p (0: the direct path). force is
// ModConvBlocking::winograd: -1 automatic, 0 never, 2 or 4 that tile size.
inline int winograd_tile(const ModConvParams& p, int force) {
  if (p.K != 3 || p.upsample || p.skip) return 0;
  if (force >= 0) return force == 2 || force == 4 ? force : 0;
  // bench/cpp/bench_modulated_conv --winograd (AMX Xeon, AVX-512, 2 threads), against the direct
  // path: F(4x4) 1.2-1.9x on the config-f layers from 64 px, 8 to 512 channels (64 px 512 ch
  // 58.0 -> 33.8 ms, 1024 px 32 ch 73.5 -> 52.9 ms, 8 ch 6.8 -> 5.9 ms). With 256+ channels F(4x4)
  // also at 32 px (two runs, ms direct / F(2x2) / F(4x4): 512 ch 16.7 / 11.1 / 10.1-10.7, 256 ch
  // 3.8-4.1 / 2.7-2.8 / 2.5-2.6) and F(2x2) at 16 px (512 ch 4.6-4.7 / 4.1-4.2 / 5.3-5.5, 256 ch
  // 1.12-1.16 / 1.04-1.09 / 1.36-1.44); with fewer, F(2x2) from 32 px (32+ channels) and the
  // direct path below (128 ch at 16 px: 0.28-0.29 / 0.38 / 0.68).
  const int64_t P = p.H * p.W, c = std::min(p.C_in, p.C_out);
  if (P >= 64 * 64 && c >= 8) return 4;
  if (P >= 32 * 32) return c >= 256 ? 4 : c >= 32 ? 2 : 0;
  return P >= 16 * 16 && c >= 256 ? 2 : 0;
}

// out[c][j] = q[M j + c] for the T column phases c of kVecLen tiles (reads 2 M kVecLen + M floats).
template <int M>
ANYCOST_INLINE void load_phases(const float* q, vfloat* out);

template <>
ANYCOST_INLINE void load_phases<2>(const float* q, vfloat* out) {
  vdeinterleave(vload(q), vload(q + kVecLen), out[0], out[1]);
  vdeinterleave(vload(q + 2), vload(q + 2 + kVecLen), out[2], out[3]);
}

ANYCOST_INLINE void phases4(const float* q, vfloat* p) {
  vfloat e0, o0, e1, o1;
  vdeinterleave(vload(q), vload(q + kVecLen), e0, o0);
  vdeinterleave(vload(q + 2 * kVecLen), vload(q + 3 * kVecLen), e1, o1);
  vdeinterleave(e0, e1, p[0], p[2]);
  vdeinterleave(o0, o1, p[1], p[3]);
}

template <>
ANYCOST_INLINE void load_phases<4>(const float* q, vfloat* out) {
  phases4(q, out);
  vfloat next[4];
  phases4(q + 4, next);
  out[4] = next[0];
  out[5] = next[1];
}

// The 1-D transforms of a tile size: in (T -> T values, B^T), out (T -> M, A^T), weight (3 -> T, G).
template <int M>
struct WinoTile;

template <>
struct WinoTile<2> {
  static constexpr int M = 2, T = 4;
  static ANYCOST_INLINE void load(const float* q, vfloat* d) { load_phases<2>(q, d); }
  static ANYCOST_INLINE void in(const vfloat* d, vfloat* o) {
    o[0] = vsub(d[0], d[2]);
    o[1] = vadd(d[1], d[2]);
    o[2] = vsub(d[2], d[1]);
    o[3] = vsub(d[1], d[3]);
  }
  static ANYCOST_INLINE void out(const vfloat* m, vfloat* y) {
    y[0] = vadd(vadd(m[0], m[1]), m[2]);
    y[1] = vsub(vsub(m[1], m[2]), m[3]);
  }
  static void weight(const float* g, float* u) {
    u[0] = g[0];
    u[1] = 0.5f * (g[0] + g[1] + g[2]);
    u[2] = 0.5f * (g[0] - g[1] + g[2]);
    u[3] = g[2];
  }
};

template <>
struct WinoTile<4> {
  static constexpr int M = 4, T = 6;
  static ANYCOST_INLINE void load(const float* q, vfloat* d) { load_phases<4>(q, d); }
  static ANYCOST_INLINE void in(const vfloat* d, vfloat* o) {
    const vfloat four = vset1(4.f), m4 = vset1(-4.f), m5 = vset1(-5.f), two = vset1(2.f);
    o[0] = vadd(vfma(m5, d[2], vmul(four, d[0])), d[4]);
    const vfloat a = vfma(m4, d[2], d[4]), b = vfma(m4, d[1], d[3]);
    o[1] = vadd(a, b);
    o[2] = vsub(a, b);
    const vfloat c = vsub(d[4], d[2]), e = vmul(two, vsub(d[3], d[1]));
    o[3] = vadd(c, e);
    o[4] = vsub(c, e);
    o[5] = vadd(vfma(m5, d[3], vmul(four, d[1])), d[5]);
  }
  static ANYCOST_INLINE void out(const vfloat* m, vfloat* y) {
    const vfloat s = vadd(m[1], m[2]), d = vsub(m[1], m[2]);
    const vfloat s2 = vadd(m[3], m[4]), d2 = vsub(m[3], m[4]);
    y[0] = vadd(vadd(m[0], s), s2);
    y[1] = vfma(vset1(2.f), d2, d);
    y[2] = vfma(vset1(4.f), s2, s);
    y[3] = vadd(vfma(vset1(8.f), d2, d), m[5]);
  }
  static void weight(const float* g, float* u) {
    u[0] = g[0] / 4.f;
    u[1] = -(g[0] + g[1] + g[2]) / 6.f;
    u[2] = -(g[0] - g[1] + g[2]) / 6.f;
    u[3] = g[0] / 24.f + g[1] / 12.f + g[2] / 6.f;
    u[4] = g[0] / 24.f - g[1] / 12.f + g[2] / 6.f;
    u[5] = g[2];
  }
};

// The M output columns of kVecLen tiles, interleaved into M vectors of consecutive outputs.
ANYCOST_INLINE void interleave_columns(const vfloat* y, vfloat* row, int M) {
  if (M == 2) {
    vinterleave(y[0], y[1], row[0], row[1]);
    return;
  }
  vfloat a0, a1, b0, b1;
  vinterleave(y[0], y[2], a0, a1);
  vinterleave(y[1], y[3], b0, b1);
  vinterleave(a0, b0, row[0], row[1]);
  vinterleave(a1, b1, row[2], row[3]);
}

// A chunk of tiles: tile rows [tr0, tr0 + rows) x tile columns [c0, c0 + cols).
struct WinoChunk {
  int64_t tr0, rows, c0, cols;
};

struct WinoPlan {
  int64_t XI;                        // positions of the transform domain, (M + 2)^2
  int64_t TH, TW;                    // output tiles per column / row
  int64_t MC, MCp, n_ocb;            // output-channel blocks
  int64_t KC;                        // input channels per block
  int64_t chunk_rows, chunk_cols;    // tiles per chunk
  int64_t Tp;                        // floats between rows of M and V (tiles per chunk, rounded)
  int64_t in_pitch, in_cs;           // staged input window: row pitch, floats per channel
  int64_t n_bands, tasks;
  std::vector<WinoChunk> chunks;     // of one sample, band by band (band b: [band_chunk[b], band_chunk[b + 1]))
  std::vector<int64_t> band_chunk;
  int64_t chunk_floats;              // V of one chunk, every block of input channels: n_kc x XI x KC x Tp
  bool shared_v;                     // V of every chunk transformed once, before the tasks
                                     // (ModConvBlocking::wino_shared_v_bytes)
  RgbLayout rgb;                     // a chunk's RGB sums (RGB head)
  size_t ws_bytes;
};

// Floats of one channel block's transformed weights U (XI x MCp x C_in) and sums of squares wsq (MCp x C_in).
inline int64_t wino_block_floats(const WinoPlan& pl, const ModConvParams& p) {
  return (pl.XI + 1) * pl.MCp * p.C_in;
}

inline WinoPlan make_wino_plan(const ModConvParams& p, const ModConvBlocking& b, int M, int64_t MR) {
  WinoPlan pl{};
  pl.XI = int64_t(M + 2) * (M + 2);
  pl.TH = ceil_div(p.H, M);
  pl.TW = ceil_div(p.W, M);
  const int64_t nt = std::max(1, b.num_threads);
  const ModConvBudget& bb = std::min(p.C_in, p.C_out) >= kWinoWideChannels ? b.wino : b.direct;
  const int64_t n_ocb = ceil_div(p.C_out, std::max<int64_t>(bb.mc, MR));
  pl.MC = round_up(ceil_div(p.C_out, n_ocb), MR);
  pl.n_ocb = ceil_div(p.C_out, pl.MC);
  pl.MCp = pl.MC;

  // Tiles per chunk from the accumulator budget (XI x MCp x tiles floats).
  const int64_t tmax = std::max<int64_t>(kVecLen, bb.acc_bytes / (4 * pl.XI * pl.MCp));
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

  // Input channels per block: the block of V (XI x KC x Tp floats) within xb_bytes, not below 8.
  int64_t KC = std::min<int64_t>(std::max<int64_t>(bb.kc, 1), p.C_in);
  while (KC > 8 && 4 * pl.XI * KC * pl.Tp > bb.xb_bytes) KC = ceil_div(KC, 2);
  const int64_t n_kc = ceil_div(p.C_in, KC);
  pl.KC = ceil_div(p.C_in, n_kc);

  // The bands split the tile rows as conv_task does.
  pl.band_chunk.assign(pl.n_bands + 1, 0);
  for (int64_t band = 0; band < pl.n_bands; ++band) {
    const int64_t r1 = (band + 1) * pl.TH / pl.n_bands;
    for (int64_t tr0 = band * pl.TH / pl.n_bands; tr0 < r1; tr0 += pl.chunk_rows)
      for (int64_t c0 = 0; c0 < pl.TW; c0 += pl.chunk_cols)
        pl.chunks.push_back({tr0, std::min(pl.chunk_rows, r1 - tr0), c0, std::min(pl.chunk_cols, pl.TW - c0)});
    pl.band_chunk[band + 1] = static_cast<int64_t>(pl.chunks.size());
  }
  pl.chunk_floats = n_kc * pl.XI * pl.KC * pl.Tp;
  pl.shared_v = pl.n_ocb > 1 && sizeof(float) * p.N * pl.chunks.size() * pl.chunk_floats <=
                                    static_cast<size_t>(b.wino_shared_v_bytes);

  // The window of a chunk: M rows / cols per tile plus one on each side; the column phases of a
  // row's last tiles read up to 2 M vectors + M floats past them.
  pl.in_pitch = M * pl.chunk_cols + 2;
  pl.in_cs = skew_ld(round_up((M * pl.chunk_rows + 2) * pl.in_pitch + 2 * M * kVecLen + M, 16));

  size_t ws = 0;
  ws += carve_bytes(sizeof(float) * pl.XI * pl.MCp * pl.Tp);  // M
  ws += carve_bytes(sizeof(float) * pl.XI * pl.KC * pl.Tp);   // V
  ws += carve_bytes(sizeof(float) * wino_block_floats(pl, p));  // U and the weight's sums of squares
  ws += carve_bytes(sizeof(float) * pl.KC * pl.in_cs);          // input window
  ws += carve_bytes(sizeof(double) * pl.MCp);                   // sumsq
  pl.rgb = rgb_layout(M * pl.chunk_rows, M * pl.chunk_cols);
  ws += carve_bytes(sizeof(float) * rgb_scratch_floats(p, pl.rgb));  // RGB sums
  ws += carve_bytes(sizeof(float) * (p.W + 32));                    // row scratch (RGB head)
  pl.ws_bytes = ws;
  return pl;
}

struct WinoBuffers {
  float *M, *V, *U, *wsq, *win;
  double* sumsq;
  float *rgb, *row;
};

inline WinoBuffers carve_wino(void* ws, const WinoPlan& pl, const ModConvParams& p) {
  Carver c(ws);
  WinoBuffers t;
  t.M = c.take<float>(pl.XI * pl.MCp * pl.Tp);
  t.V = c.take<float>(pl.XI * pl.KC * pl.Tp);
  t.U = c.take<float>(wino_block_floats(pl, p));
  t.wsq = t.U + pl.XI * pl.MCp * p.C_in;
  t.win = c.take<float>(pl.KC * pl.in_cs);
  t.sumsq = c.take<double>(pl.MCp);
  t.rgb = c.take<float>(rgb_scratch_floats(p, pl.rgb));
  t.row = c.take<float>(p.W + 32);
  return t;
}

// U = (G W[o, i] G^T)[xi] for o = o0 + ob*MR + m (zero for o >= o_end), all C_in input channels, by block of KC
// input channels (i0 = its first, kc its size): at U + i0 * XI * MCp + xi * MCp * kc + ob * kc * MR + (i - i0) * MR
// + m, so that the GEMMs of a block read one contiguous stream. wsq[(o - o0) * C_in + i] = the sum over the taps
// of W[o, i]^2 (zero for o >= o_end). Input channel outer, so that each (xi, i) row of MR values is written at once.
template <int M, int MR>
void pack_wino_weights(float* U, float* wsq, const ModConvParams& p, const WinoPlan& pl, int64_t o0, int64_t o_end) {
  constexpr int T = WinoTile<M>::T, XI = T * T;
  for (int64_t ob = 0; ob < pl.MCp / MR; ++ob) {
    const int64_t nm = std::max<int64_t>(0, std::min<int64_t>(MR, o_end - (o0 + ob * MR)));
    for (int64_t m = nm; m < MR; ++m) std::fill(wsq + (ob * MR + m) * p.C_in, wsq + (ob * MR + m + 1) * p.C_in, 0.f);
    for (int64_t i = 0; i < p.C_in; ++i) {
      float u[XI][MR];  // zero past o_end (a last slice); whole slices skip the fill (a rep stos per input
                        // channel was a quarter of the packing's time at 32 px)
      if (nm < MR) std::fill(&u[0][0], &u[0][0] + XI * MR, 0.f);
      for (int64_t m = 0; m < nm; ++m) {
        const float* w = p.weight + (o0 + ob * MR + m) * p.w_so + i * p.w_si;
        float g[3][3], ss = 0.f;
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            g[ky][kx] = w[ky * p.w_sh + kx * p.w_sw];
            ss += g[ky][kx] * g[ky][kx];
          }
        wsq[(ob * MR + m) * p.C_in + i] = ss;
        float t[3][T];  // (G g^T)^T: column c of g transformed, by tap column
        for (int c = 0; c < 3; ++c) {
          const float col[3] = {g[0][c], g[1][c], g[2][c]};
          WinoTile<M>::weight(col, t[c]);
        }
        for (int r = 0; r < T; ++r) {  // row r of G g, transformed along the columns
          const float row[3] = {t[0][r], t[1][r], t[2][r]};
          float ur[T];
          WinoTile<M>::weight(row, ur);
          for (int c = 0; c < T; ++c) u[r * T + c][m] = ur[c];
        }
      }
      const int64_t i0 = i / pl.KC * pl.KC, kc = std::min(pl.KC, p.C_in - i0);
      float* d = U + i0 * XI * pl.MCp + (ob * kc + i - i0) * MR;
      for (int xi = 0; xi < XI; ++xi) std::memcpy(d + xi * pl.MCp * kc, u[xi], sizeof(float) * MR);
    }
  }
}

// sumsq[o - o0] = sum_i s_i^2 wsq[o - o0][i]: the sum of squares of output channel o's style-scaled weight.
inline void wino_demod_sums(const ModConvParams& p, const float* wsq, const float* s_n, int64_t o0, int64_t o_end,
                            double* sumsq) {
  for (int64_t o = o0; o < o_end; ++o) {
    const float* q = wsq + (o - o0) * p.C_in;
    double acc = 0.0;
    for (int64_t i = 0; i < p.C_in; ++i) {
      const double s = s_n[i * p.s_sc];
      acc += s * s * q[i];
    }
    sumsq[o - o0] = acc;
  }
}

// V[xi][i][t] = scale_i (B^T d B)[xi] (Tile: WinoTile<M> or the upsampling path's WinoUpTile; scale_i =
// scale[i * scale_stride], 1 without scale) of a staged window of kc channels (channel pitch in_cs, row pitch
// in_pitch; tile (r, c) at rows M r .. M r + T - 1, cols M c ..) for rows x cols tiles (t = r * cols + c);
// V[xi][i] at Vb + xi * v_xi + i * Tp; the tiles up to the next whole vector are zero.
template <class Tile>
void wino_input_transform(float* Vb, int64_t v_xi, int64_t Tp, const float* win, int64_t in_pitch,
                          int64_t in_cs, int64_t kc, int64_t rows, int64_t cols, const float* scale = nullptr,
                          int64_t scale_stride = 0) {
  constexpr int M = Tile::M, T = Tile::T;
  const int64_t tiles = rows * cols, tend = round_up(tiles, kVecLen);
  for (int64_t i = 0; i < kc; ++i) {
    const vfloat sv = vset1(scale ? scale[i * scale_stride] : 1.f);
    const float* wi = win + i * in_cs;
    float* vi = Vb + i * Tp;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row0 = wi + M * r * in_pitch;
      // Full vectors: the lanes past the row's last tile are overwritten by the next row (or by
      // the zero fill below).
      for (int64_t c = 0; c < cols; c += kVecLen) {
        vfloat t[T][T];  // B^T d: [transformed row a][column]
        {
          vfloat d[T][T];  // [window row k][column phase]
          for (int k = 0; k < T; ++k) Tile::load(row0 + k * in_pitch + M * c, d[k]);
          for (int col = 0; col < T; ++col) {
            vfloat in[T], o[T];
            for (int k = 0; k < T; ++k) in[k] = d[k][col];
            Tile::in(in, o);
            for (int a = 0; a < T; ++a) t[a][col] = o[a];
          }
        }
        float* dst = vi + r * cols + c;
        for (int a = 0; a < T; ++a) {
          vfloat v[T];
          Tile::in(t[a], v);
          for (int b = 0; b < T; ++b) vstore(dst + (a * T + b) * v_xi, vmul(v[b], sv));
        }
      }
    }
    for (int xi = 0; xi < T * T; ++xi)
      std::memset(vi + xi * v_xi + tiles, 0, sizeof(float) * (tend - tiles));
  }
}

// One MR-row slice of a transform-domain GEMM over a strip of tiles: m[r][t] (+)= sum_{i < kc} u[i][r] v[i][t]
// for the MR rows r (u: [kc][MR], m: row pitch Tp) and the nvec <= NR vectors of tiles t from v and m (v: row
// pitch Tp); a short strip (the chunk's last) runs pairs of vectors, then one.
template <int MR, int NR>
ANYCOST_INLINE void wino_strip(const float* u, const float* v, float* m, int64_t Tp, int64_t kc, int64_t nvec,
                               bool accum) {
  if (nvec == NR) {
    conv_ukernel<MR, NR, 1, 1, 1>(u, MR, v, Tp, 0, kc, m, Tp, accum);
    return;
  }
  int64_t j = 0;
  for (; j + 2 <= nvec; j += 2)
    conv_ukernel<MR, 2, 1, 1, 1>(u, MR, v + j * kVecLen, Tp, 0, kc, m + j * kVecLen, Tp, accum);
  if (j < nvec) conv_ukernel<MR, 1, 1, 1, 1>(u, MR, v + j * kVecLen, Tp, 0, kc, m + j * kVecLen, Tp, accum);
}

// Output transform and epilogue of one channel for the chunk's tiles: tile rows [tr0, tr0 + rows),
// tile cols [c0, c0 + cols); mo points at M[0][o][0].
template <int M>
void wino_output(const EpilogueChannel& ec, const WinoPlan& pl, const float* mo,
                 const ModConvParams& p, int64_t tr0, int64_t rows, int64_t c0, int64_t cols) {
  constexpr int T = WinoTile<M>::T;
  const EpilogueRegs e(ec);
  const int64_t m_xi = pl.MCp * pl.Tp;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t y = M * (tr0 + r);
    for (int64_t c = 0; c < cols; c += kVecLen) {
      const float* m = mo + r * cols + c;
      vfloat s[M][T];  // A^T M: [output row a][column]
      for (int col = 0; col < T; ++col) {
        vfloat in[T], o[M];
        for (int k = 0; k < T; ++k) in[k] = vload(m + (k * T + col) * m_xi);
        WinoTile<M>::out(in, o);
        for (int a = 0; a < M; ++a) s[a][col] = o[a];
      }
      const int64_t x = M * (c0 + c);
      const int64_t nx = std::min<int64_t>(M * std::min<int64_t>(kVecLen, cols - c), p.W - x);
      for (int a = 0; a < M && y + a < p.H; ++a) {
        vfloat yv[M], row[M];
        WinoTile<M>::out(s[a], yv);
        interleave_columns(yv, row, M);
        for (int q = 0; q < M && nx > q * kVecLen; ++q)
          finish_store(e, row[q], y + a, x + q * kVecLen,
                       int(std::min<int64_t>(kVecLen, nx - q * kVecLen)), nullptr);
      }
    }
  }
  finish_epilogue(e);
}

// V of the block of input channels from i0 of chunk c of sample n, times their styles, into Vb (XI x KC x Tp; win
// stages the window).
template <int M>
void wino_chunk_input(const ModConvParams& p, const WinoPlan& pl, float* win, float* Vb, int64_t n, const WinoChunk& c,
                      int64_t i0) {
  const int64_t kc = std::min(pl.KC, p.C_in - i0);
  pack_input_window(win, pl.in_cs, pl.in_pitch, p.x + n * p.x_sn + i0 * p.x_sc, p.x_sc, p.x_sh, p.x_sw, kc,
                    M * c.tr0 - 1, M * c.rows + 2, M * c.c0 - 1, M * c.cols + 2, p.H, p.W);
  wino_input_transform<WinoTile<M>>(Vb, pl.KC * pl.Tp, pl.Tp, win, pl.in_pitch, pl.in_cs, kc, c.rows, c.cols,
                                    p.styles + n * p.s_sn + i0 * p.s_sc, p.s_sc);
}

// One chunk of tiles of channels [o0, o_end) with their transformed weights U (pack_wino_weights' layout), the RGB
// head's sums into channel block ocb's planes (modconv_rgb.h). Vs: the chunk's V transformed before the tasks
// (WinoPlan::shared_v), else null (transformed here, a block of input channels at a time).
template <int M, int MR, int NR>
void wino_chunk(const ModConvParams& p, const WinoPlan& pl, const WinoBuffers& tb, const float* U, int64_t n,
                int64_t o0, int64_t o_end, const WinoChunk& c, const float* Vs, float* rgb_parts, int64_t ocb) {
  constexpr int64_t V = kVecLen * NR;
  const int64_t tiles = c.rows * c.cols;
  const int64_t n_ob = ceil_div(o_end - o0, MR);
  const int64_t m_xi = pl.MCp * pl.Tp, v_xi = pl.KC * pl.Tp;
  for (int64_t i0 = 0; i0 < p.C_in; i0 += pl.KC) {
    const int64_t kc = std::min(pl.KC, p.C_in - i0);
    const float* Vb = tb.V;
    if (Vs)
      Vb = Vs + i0 * pl.XI * pl.Tp;
    else
      wino_chunk_input<M>(p, pl, tb.win, tb.V, n, c, i0);
    const bool accum = i0 > 0;
    for (int64_t xi = 0; xi < pl.XI; ++xi) {
      const float* u = U + i0 * pl.XI * pl.MCp + xi * pl.MCp * kc;
      const float* v = Vb + xi * v_xi;
      float* m = tb.M + xi * m_xi;
      for (int64_t g = 0; g < tiles; g += V) {
        const int64_t nvec = std::min<int64_t>(NR, ceil_div(tiles - g, kVecLen));
        for (int64_t ob = 0; ob < n_ob; ++ob)
          wino_strip<MR, NR>(u + ob * kc * MR, v + g, m + ob * MR * pl.Tp + g, pl.Tp, kc, nvec, accum);
      }
    }
  }
  const RgbChunk rgb = rgb_chunk(p, tb.rgb, pl.rgb, n, M * c.tr0, std::min(p.H, M * (c.tr0 + c.rows)), M * c.c0,
                                 std::min(p.W, M * (c.c0 + c.cols)));
  if (rgb.acc) rgb_begin(p, rgb, ocb == 0, tb.row);
  for (int64_t o = o0; o < o_end; ++o) {
    EpilogueChannel e = make_epilogue(p, n, o, tb.sumsq[o - o0], c.tr0 == 0 && c.c0 == 0);
    set_rgb(e, p, rgb, o);
    wino_output<M>(e, pl, tb.M + (o - o0) * pl.Tp, p, c.tr0, c.rows, c.c0, c.cols);
  }
  if (rgb.acc) rgb_end(p, rgb, rgb_parts, ocb);
}

template <int M, int MR, int NR, class ParallelFor>
void winograd_tasks(const ModConvParams& p, const ParallelFor& pf, const ModConvBlocking& blocking) {
  const WinoPlan pl = make_wino_plan(p, blocking, M, MR);
  const std::unique_ptr<float[]> rgb_parts = rgb_partials(p, pl.n_ocb);
  const int64_t nq = static_cast<int64_t>(pl.chunks.size());
  float* shared = nullptr;
  if (pl.shared_v) {  // every (sample, chunk, block of input channels) once, instead of once per channel block
    const int64_t n_kc = ceil_div(p.C_in, pl.KC);
    shared = static_cast<float*>(thread_workspace(sizeof(float) * p.N * nq * pl.chunk_floats, kCallSlot));
    pf(0, p.N * nq * n_kc, 1, [&](int64_t j0, int64_t j1) {
      float* win = carve_wino(thread_workspace(pl.ws_bytes), pl, p).win;
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t kb = j % n_kc, q = j / n_kc % nq, n = j / (n_kc * nq);
        wino_chunk_input<M>(p, pl, win, shared + (n * nq + q) * pl.chunk_floats + kb * pl.XI * pl.KC * pl.Tp, n,
                            pl.chunks[q], kb * pl.KC);
      }
    });
  }
  // The transformed weights of every channel block, built once (in parallel) and kept in the cache, when the
  // caller names the weight's values and they fit the cache; else each task packs its block's.
  const int64_t bf = wino_block_floats(pl, p);
  FloatBlock layer;
  WinoWeightCache& cache = wino_weight_cache();
  if (p.weight_id && sizeof(float) * pl.n_ocb * bf <= cache.max_bytes()) {
    const WinoWeightKey key{p.weight_id, p.weight_version, p.weight, p.w_so, p.w_si, p.w_sh, p.w_sw,
                            p.C_in,      p.C_out,          M,        pl.MC,  pl.KC,  MR};
    layer = cache.get(key);
    if (!layer) {
      layer = WinoWeightCache::allocate(pl.n_ocb * bf);
      float* base = layer.get();
      pf(0, pl.n_ocb, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
          pack_wino_weights<M, MR>(base + b * bf, base + b * bf + pl.XI * pl.MCp * p.C_in, p, pl, b * pl.MC,
                                   std::min(p.C_out, (b + 1) * pl.MC));
      });
      cache.put(key, layer, pl.n_ocb * bf);
    }
  }
  pf(0, pl.tasks, 1, [&](int64_t t0, int64_t t1) {
    const WinoBuffers tb = carve_wino(thread_workspace(pl.ws_bytes), pl, p);
    int64_t packed_o0 = -1;                 // whose U tb holds: the tasks of a block that follow share it
    int64_t summed_n = -1, summed_o0 = -1;  // whose demodulation sums tb holds
    for (int64_t t = t0; t < t1; ++t) {
      const ConvTask k = conv_task_block_major(t, pl.n_bands, p.N, pl.MC, p.C_out, pl.TH);  // tile rows
      if (k.r0 >= k.r1) continue;
      const float *U = tb.U, *wsq = tb.wsq;
      if (layer) {
        U = layer.get() + k.o0 / pl.MC * bf;
        wsq = U + pl.XI * pl.MCp * p.C_in;
      } else if (k.o0 != packed_o0) {
        pack_wino_weights<M, MR>(tb.U, tb.wsq, p, pl, k.o0, k.o_end);
        packed_o0 = k.o0;
      }
      if (k.n != summed_n || k.o0 != summed_o0) {
        wino_demod_sums(p, wsq, p.styles + k.n * p.s_sn, k.o0, k.o_end, tb.sumsq);
        summed_n = k.n, summed_o0 = k.o0;
      }
      const int64_t band = t % pl.n_bands;
      for (int64_t q = pl.band_chunk[band]; q < pl.band_chunk[band + 1]; ++q)
        wino_chunk<M, MR, NR>(p, pl, tb, U, k.n, k.o0, k.o_end, pl.chunks[q],
                              shared ? shared + (k.n * nq + q) * pl.chunk_floats : nullptr, rgb_parts.get(),
                              k.o0 / pl.MC);
    }
  });
  rgb_reduce(p, rgb_parts.get(), pl.n_ocb, pf);
}

// The Winograd path with tile size `tile` (2 or 4; see winograd_tile).
template <int MR, int NR, class ParallelFor>
void modulated_conv2d_winograd(const ModConvParams& p, const ParallelFor& pf,
                               const ModConvBlocking& blocking, int tile) {
  if (tile == 4)
    winograd_tasks<4, MR, NR>(p, pf, blocking);
  else
    winograd_tasks<2, MR, NR>(p, pf, blocking);
}

}  // namespace detail
ANYCOST_CPU_NAMESPACE_END
