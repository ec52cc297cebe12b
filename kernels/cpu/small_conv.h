// Dense K x K conv (stride 1 or 2, padding K / 2: reflected or zeros) + bias for few channels, optionally
// followed by the instance norm of each output plane and a ReLU; torch-free CPU path. The image-to-image
// generators' 7x7 stem and head (3 <-> 4-16 channels) and the students' stride-2 convs run it: oneDNN
// took 2.3 ms for the 4->3 7x7 head at 256 px (33 GFLOP/s), a per-call cost of its few-channel path.
//
//   out[n, o] = relu?(norm?(sum_{i, ky, kx} w[o, i, ky, kx] * pad(x[n, i])[s * y + ky, s * x + kx] + bias[o]))
//
// 1. Tasks = (band of output rows, sample), band-major (parallel.h, i2i_bands). A task first pads the rows its
//    band's taps read, of every input plane, into its thread's scratch. With stride 2 each padded row is
//    stored as its even columns, then its odd ones, so the taps of consecutive outputs are consecutive
//    floats: tap kx of output x is column kx % 2, index x + kx / 2.
// 2. Per row and block of output channels, strips of NV vectors of outputs x up to OB channels stay in
//    registers over all C_in x K x K taps (each input vector feeds OB FMAs, each broadcast weight NV).
//    With 8 or more output channels OB is 8 and NV as many vectors as fit beside their accumulators;
//    with fewer, OB is 4 and NV follows the output width (a 16-wide row in a 64-wide strip wasted 3/4 of
//    the FMAs): small_conv_shape.
// 3. The norm, the ReLU and the optional residual: instance_norm.h, BandedNorm.
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "instance_norm.h"
#include "op_params.h"
#include "parallel.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN

namespace detail {

constexpr int kSmallConvOB = 4;  // output channels per task, unless small_conv_shape takes 8
constexpr int kSmallConvNV = kVecLen == 16 ? 4 : 2;  // most vectors of output positions per strip
constexpr int kSmallConvRegs = kVecLen == 16 ? 32 : 16;  // vector registers (a strip needs OB x NV + NV + 1)

// Channels per block and vectors per strip for p: 8 channels whenever there are 8, in strips of up to
// (registers - 1) / 9 vectors (3 at AVX-512, 1 at AVX2; measured at AVX-512 only); else 4 channels in
// strips of as few vectors as cover a row, up to kSmallConvNV.
struct SmallConvShape {
  int ob, nv;
};

inline SmallConvShape small_conv_shape(const SmallConv2dParams& p) {
  const int64_t vectors = (p.W_out() + kVecLen - 1) / kVecLen;
  if (p.C_out >= 8) {  // 8 channels in strips of as many vectors as fit beside their accumulators
    const int nv = int(std::min<int64_t>(vectors, (kSmallConvRegs - 1) / 9));
    return {8, nv};
  }
  return {kSmallConvOB, vectors >= kSmallConvNV ? kSmallConvNV : vectors > 1 ? 2 : 1};
}

// The staged padded input of one row band: `rows` padded rows of each input plane.
struct SmallConvLayout {
  int64_t pad;    // padding
  int64_t seg;    // floats per column phase of a padded row (stride 2: even, then odd columns)
  int64_t pitch;  // floats per padded row (stride x seg)
  int64_t plane;  // floats per staged plane (rows x pitch)
};

inline SmallConvLayout small_conv_layout(const SmallConv2dParams& p, int64_t rows) {
  SmallConvLayout l{};
  l.pad = p.K / 2;
  const int64_t Wp = p.W + 2 * l.pad;  // padded columns
  // A strip reads up to NV * kVecLen - 1 positions past the last output, plus the taps' reach: zeros there.
  l.seg = round_up((Wp + p.stride - 1) / p.stride + kSmallConvNV * kVecLen, kVecLen);
  l.pitch = p.stride * l.seg;
  l.plane = rows * l.pitch;
  return l;
}

ANYCOST_INLINE int64_t small_conv_src(int64_t j, int64_t n, bool reflect) {
  if (j >= 0 && j < n) return j;
  if (!reflect) return -1;
  return j < 0 ? -j : 2 * (n - 1) - j;
}

// Padded row r of input plane (n, i) into dst (pitch floats, zero beyond the padded columns).
inline void small_conv_pad_row(const SmallConv2dParams& p, const SmallConvLayout& l, int64_t n, int64_t i,
                               int64_t r, float* dst) {
  std::fill(dst, dst + l.pitch, 0.f);
  const int64_t src_row = small_conv_src(r - l.pad, p.H, p.reflect);
  if (src_row < 0) return;
  const float* src = p.x + n * p.x_sn + i * p.x_sc + src_row * p.x_sh;
  // Column c of the padded row (stride 1 or 2: shifts, where a division per element was half of a 32 px student's
  // stride-2 convs).
  const int shift = p.stride == 2 ? 1 : 0;
  auto put = [&](int64_t c, float v) { dst[(c & shift) * l.seg + (c >> shift)] = v; };
  // The interior (columns pad .. pad + W - 1 hold the source row), vectorised for contiguous rows: at
  // stride 2 the source's even elements go to phase pad % 2, its odd ones to the other.
  int64_t j = 0;
  if (p.x_sw == 1 && p.stride == 1) {
    std::copy(src, src + p.W, dst + l.pad);
    j = p.W;
  } else if (p.x_sw == 1) {
    float* even = dst + (l.pad % 2) * l.seg + l.pad / 2;
    float* odd = dst + ((l.pad + 1) % 2) * l.seg + (l.pad + 1) / 2;
    for (; j + 2 * kVecLen <= p.W; j += 2 * kVecLen) {
      vfloat e, o;
      vdeinterleave(vload(src + j), vload(src + j + kVecLen), e, o);
      vstore(even + j / 2, e);
      vstore(odd + j / 2, o);
    }
    if (const int m = static_cast<int>(p.W - j); m > 0) {  // the rest, masked (m < 2 * kVecLen)
      vfloat e, o;
      vdeinterleave(vload_n(src + j, std::min(m, kVecLen)), m > kVecLen ? vload_n(src + j + kVecLen, m - kVecLen)
                                                                        : vzero(), e, o);
      vstore_n(even + j / 2, e, (m + 1) / 2);
      if (m > 1) vstore_n(odd + j / 2, o, m / 2);
      j = p.W;
    }
  }
  for (; j < p.W; ++j) put(l.pad + j, src[j * p.x_sw]);
  for (int64_t c = 0; c < l.pad; ++c) {  // the borders
    const int64_t left = small_conv_src(c - l.pad, p.W, p.reflect);
    const int64_t right = small_conv_src(p.W + c, p.W, p.reflect);
    put(c, left < 0 ? 0.f : src[left * p.x_sw]);
    put(l.pad + p.W + c, right < 0 ? 0.f : src[right * p.x_sw]);
  }
}

// Row y of output channels o0 .. o0 + OB - 1 of sample n in p.out ([N, C_out, Ho, Wo] contiguous), and their
// biases broadcast (zero without a bias).
template <int OB, class Params>
ANYCOST_INLINE void output_rows(const Params& p, int64_t n, int64_t o0, int64_t y, int64_t Ho, int64_t Wo,
                                float* (&rows)[OB], vfloat (&bias)[OB]) {
  for (int ob = 0; ob < OB; ++ob) {
    rows[ob] = p.out + ((n * p.C_out + o0 + ob) * Ho + y) * Wo;
    bias[ob] = vset1(p.bias ? p.bias[(o0 + ob) * p.bias_s] : 0.f);
  }
}

template <int OB, int S, int NV>
void small_conv_row(const SmallConv2dParams& p, const SmallConvLayout& l, const float* in, int64_t row0, int64_t n,
                    int64_t o0, int64_t y) {
  const int64_t Wo = p.W_out(), Ho = p.H_out();
  float* out_row[OB];
  vfloat bias[OB];
  output_rows<OB>(p, n, o0, y, Ho, Wo, out_row, bias);
  const bool relu_here = p.relu && !p.normalize;
  for (int64_t x0 = 0; x0 < Wo; x0 += NV * kVecLen) {
    vfloat acc[OB][NV];
    for (int ob = 0; ob < OB; ++ob)
      for (int j = 0; j < NV; ++j) acc[ob][j] = bias[ob];
    for (int64_t i = 0; i < p.C_in; ++i) {
      const float* w_i = p.weight + o0 * p.w_so + i * p.w_si;
      for (int ky = 0; ky < p.K; ++ky) {
        const float* row = in + i * l.plane + (S * y + ky - row0) * l.pitch + x0;
        for (int kx = 0; kx < p.K; ++kx) {
          const float* src = row + (kx % S) * l.seg + kx / S;
          vfloat a[NV];
          for (int j = 0; j < NV; ++j) {
            a[j] = vload(src + j * kVecLen);
#if ANYCOST_CPU_AVX512 && defined(__GNUC__)
            // GCC folds the load into each of the OB FMAs; pinning it in a register measured 20% faster with
            // 3 output channels (the heads) and 5-8% slower with 4 (AMX Xeon, AVX-512, 2 threads).
            if constexpr (OB < kSmallConvOB) __asm__("" : "+v"(a[j].v));
#endif
          }
          for (int ob = 0; ob < OB; ++ob) {
            const vfloat wv = vset1(w_i[ob * p.w_so + ky * p.w_sh + kx * p.w_sw]);
            for (int j = 0; j < NV; ++j) acc[ob][j] = vfma(wv, a[j], acc[ob][j]);
          }
        }
      }
    }
    for (int ob = 0; ob < OB; ++ob)
      for (int j = 0; j < NV; ++j) {
        const int64_t x = x0 + j * kVecLen;
        if (x >= Wo) break;
        const vfloat v = relu_here ? vlrelu(acc[ob][j], vzero()) : acc[ob][j];
        vstore_n(out_row[ob] + x, v, static_cast<int>(std::min<int64_t>(kVecLen, Wo - x)));
      }
  }
}

// One output row of channels [o0, o0 + ob), ob <= 8, at stride S, in strips of NV vectors.
template <int S, int NV>
void small_conv_block(const SmallConv2dParams& p, const SmallConvLayout& l, const float* in, int64_t row0, int64_t n,
                      int64_t o0, int64_t ob, int64_t y) {
  switch (ob) {
    case 1: small_conv_row<1, S, NV>(p, l, in, row0, n, o0, y); break;
    case 2: small_conv_row<2, S, NV>(p, l, in, row0, n, o0, y); break;
    case 3: small_conv_row<3, S, NV>(p, l, in, row0, n, o0, y); break;
    case 4: small_conv_row<4, S, NV>(p, l, in, row0, n, o0, y); break;
    default:
      if constexpr (8 * NV + NV + 1 <= kSmallConvRegs) {
        switch (ob) {
          case 5: small_conv_row<5, S, NV>(p, l, in, row0, n, o0, y); break;
          case 6: small_conv_row<6, S, NV>(p, l, in, row0, n, o0, y); break;
          case 7: small_conv_row<7, S, NV>(p, l, in, row0, n, o0, y); break;
          default: small_conv_row<8, S, NV>(p, l, in, row0, n, o0, y); break;
        }
      } else {
        throw std::invalid_argument("small_conv2d: more than 4 channels per block in wide strips");
      }
      break;
  }
}

template <int S>
void small_conv_block(const SmallConv2dParams& p, const SmallConvLayout& l, const float* in, int64_t row0, int64_t n,
                      int64_t o0, int64_t ob, int64_t y, int nv) {
  switch (nv) {
    case 1: small_conv_block<S, 1>(p, l, in, row0, n, o0, ob, y); break;
    case 2: small_conv_block<S, 2>(p, l, in, row0, n, o0, ob, y); break;
    case 3: small_conv_block<S, 3>(p, l, in, row0, n, o0, ob, y); break;
    default: small_conv_block<S, kSmallConvNV>(p, l, in, row0, n, o0, ob, y); break;
  }
}

}  // namespace detail

template <class ParallelFor>
void small_conv2d(const SmallConv2dParams& p, const ParallelFor& pf) {
  if (!p.x || !p.weight || !p.out || p.N < 1 || p.C_in < 1 || p.C_out < 1 || p.H < 1 || p.W < 1 || p.K < 1 ||
      p.K % 2 == 0 || (p.stride != 1 && p.stride != 2) || (p.reflect && (p.K / 2 >= p.H || p.K / 2 >= p.W)))
    throw std::invalid_argument("small_conv2d: bad arguments");
  const int64_t Ho = p.H_out(), Wo = p.W_out(), bands = detail::i2i_bands(p.num_threads, Ho);
  const detail::SmallConvShape shape = detail::small_conv_shape(p);
  const BandedNorm norm(p.out, p.N * p.C_out, Ho, Wo, bands, p.normalize, p.relu, p.eps, p.residual);
  const int64_t band_work = Wo * Ho / bands * p.C_in * p.K * p.K * p.C_out;
  pf(0, bands * p.N, std::max<int64_t>(1, 65536 / band_work), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / p.N, n = t % p.N;
      const detail::RowBand band = detail::row_band(b, bands, Ho);
      // The padded rows the band's taps read, [row0, row1) of each input plane, staged in this thread's scratch:
      // a band's halo rows are padded by both bands, and no thread writes what another reads.
      const int64_t row0 = p.stride * band.r0, row1 = p.stride * (band.r1 - 1) + p.K;
      const detail::SmallConvLayout l = detail::small_conv_layout(p, row1 - row0);
      float* in = static_cast<float*>(thread_workspace(sizeof(float) * p.C_in * l.plane));
      for (int64_t i = 0; i < p.C_in; ++i)
        for (int64_t r = row0; r < row1; ++r)
          detail::small_conv_pad_row(p, l, n, i, r, in + i * l.plane + (r - row0) * l.pitch);
      for (int64_t y = band.r0; y < band.r1; ++y) {
        // Channel blocks innermost: consecutive rows read the same padded input rows, which stay in L2 across the
        // blocks (rows innermost re-streamed the band's padded input once per block).
        for (int64_t o0 = 0; o0 < p.C_out; o0 += shape.ob) {
          const int64_t ob = std::min<int64_t>(shape.ob, p.C_out - o0);
          if (p.stride == 1)
            detail::small_conv_block<1>(p, l, in, row0, n, o0, ob, y, shape.nv);
          else
            detail::small_conv_block<2>(p, l, in, row0, n, o0, ob, y, shape.nv);
        }
      }
      for (int64_t o = 0; o < p.C_out; ++o) norm.band_done(n * p.C_out + o, b);
    }
  });
  norm.finish(pf);
}

ANYCOST_CPU_NAMESPACE_END
