// upfirdn2d (upsample, FIR filter, downsample) and the StyleGAN2 2x skip
// upsampling, torch-free CPU path.
//
// upfirdn2d semantics (as StyleGAN2's upfirdn2d_native), per plane:
//   U = x with (up-1) zeros inserted after every sample (size H*up_y x W*up_x)
//   P = U padded by pad_x0/pad_x1/pad_y0/pad_y1 zeros (negative = crop)
//   F = true 2D convolution of P with the kernel (the kernel is flipped), valid
//   out = F[::down_y, ::down_x]
//   H_out = (H*up_y + pad_y0 + pad_y1 - kh) / down_y + 1   (same for W)
//
// Blocking: a task is (plane, band of output rows). For its band it builds
// the horizontally upsampled + padded input rows it needs once (row cache in
// the thread workspace), then every output row is a sum over the kernel rows
// of 1D FIRs on those cached rows (vectorised along x when down_x == 1).
#pragma once

#include "isa.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "modconv_epilogue.h"
#include "parallel.h"
#include "op_params.h"
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN


namespace detail {

constexpr int64_t kFirBandRows = 16;

// Row of P (horizontally upsampled, padded/cropped) for input row iy, stored
// split by phase modulo down_x: prow[r * plen + j] = P[j * dx + r], so that
// out[ox] = sum_kx k[kx] * prow[(kx % dx) * plen + ox + kx / dx] reads
// contiguous vectors for any decimation.
inline void fir_build_row(const UpFirDn2dParams& p, const float* xr, float* prow, int64_t Wpad,
                          int64_t plen) {
  const int64_t dx = p.down_x, ux = p.up_x, sw = p.x_sw;
  std::fill(prow, prow + dx * plen, 0.f);
  // Input columns landing inside [0, Wpad): px = ix * ux + pad_x0.
  int64_t ix0 = p.pad_x0 >= 0 ? 0 : (-p.pad_x0 + ux - 1) / ux;
  int64_t ix1 = std::min<int64_t>(p.W, (Wpad - 1 - p.pad_x0) / ux + 1);
  if (Wpad - 1 - p.pad_x0 < 0) ix1 = 0;
  if (ix0 >= ix1) return;
  if (dx == 1 && ux == 1) {
    float* d = prow + ix0 + p.pad_x0;
    if (sw == 1) {
      std::memcpy(d, xr + ix0, sizeof(float) * (ix1 - ix0));
    } else {
      for (int64_t ix = ix0; ix < ix1; ++ix) d[ix - ix0] = xr[ix * sw];
    }
    return;
  }
  const int64_t px0 = ix0 * ux + p.pad_x0;
  int64_t r = px0 % dx, j = px0 / dx;  // phase and index of px, updated incrementally
  for (int64_t ix = ix0; ix < ix1; ++ix) {
    prow[r * plen + j] = xr[ix * sw];
    r += ux;
    while (r >= dx) r -= dx, ++j;
  }
}

// NV vectors of one output row from ox: sum over the kernel rows hitting an input row (rows[ky] !=
// nullptr, nr of them) of the 1D FIR of that cached row; stores the lanes below Wo.
template <int NV>
ANYCOST_INLINE void fir_row_pass(const float* const* rows, int64_t nr, int64_t kh, int64_t kw, const float* kfp,
                                 const int64_t* koff, int64_t ox, int64_t Wo, float* dst, int64_t o_sw) {
  vfloat acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = vzero();
  if (nr) {
    for (int64_t ky = 0; ky < kh; ++ky) {
      const float* r = rows[ky];
      if (!r) continue;
      const float* kr = kfp + ky * kw;
      for (int64_t kx = 0; kx < kw; ++kx) {
        const vfloat kv = vset1(kr[kx]);
        const float* s = r + koff[kx] + ox;
        for (int j = 0; j < NV; ++j) acc[j] = vfma(kv, vload(s + j * kVecLen), acc[j]);
      }
    }
  }
  for (int j = 0; j < NV; ++j) {
    const int64_t x0 = ox + j * kVecLen;
    const int nv = static_cast<int>(Wo - x0 < kVecLen ? Wo - x0 : kVecLen);
    vstore_strided(dst + x0 * o_sw, o_sw, acc[j], nv);
  }
}

template <class ParallelFor>
void upfirdn2d_impl(const UpFirDn2dParams& p, const ParallelFor& pf) {
  const int64_t Ho = p.H_out(), Wo = p.W_out();
  if (Ho <= 0 || Wo <= 0) return;
  const int64_t Wpad = p.W * p.up_x + p.pad_x0 + p.pad_x1;
  const int64_t dy = p.down_y, dx = p.down_x, uy = p.up_y;
  const int64_t kh = p.kh, kw = p.kw;
  // Flipped kernel (true convolution), contiguous.
  std::vector<float> kf(static_cast<size_t>(kh * kw));
  for (int64_t a = 0; a < kh; ++a)
    for (int64_t b = 0; b < kw; ++b)
      kf[a * kw + b] = p.kernel[(kh - 1 - a) * p.k_sh + (kw - 1 - b) * p.k_sw];
  const int64_t bands = (Ho + kFirBandRows - 1) / kFirBandRows;
  const int64_t planes = p.N * p.C;
  // Max cached input rows per band: rows of U touched by kFirBandRows output rows.
  const int64_t cache_rows = (kFirBandRows - 1) * dy / uy + kh / uy + 2;
  const int64_t plen = (Wpad + dx - 1) / dx + 4 * kVecLen + 8;
  const int64_t pitch = (dx * plen + 15) / 16 * 16;
  const size_t ws = carve_bytes(sizeof(float) * cache_rows * pitch) +
                    carve_bytes(sizeof(const float*) * kh);
  const float* kfp = kf.data();
  std::vector<int64_t> koffv(static_cast<size_t>(kw));  // phase row + shift of tap kx
  for (int64_t kx = 0; kx < kw; ++kx) koffv[kx] = (kx % dx) * plen + kx / dx;
  const int64_t* koff = koffv.data();
  pf(0, planes * bands, 1, [&](int64_t t0, int64_t t1) {
    Carver cv(thread_workspace(ws));
    float* cache = cv.take<float>(cache_rows * pitch);
    const float** rows = cv.take<const float*>(kh);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t plane = t / bands, band = t % bands;
      const int64_t n = plane / p.C, c = plane % p.C;
      const float* xp = p.x + n * p.x_sn + c * p.x_sc;
      float* op = p.out + n * p.o_sn + c * p.o_sc;
      const int64_t oy0 = band * kFirBandRows, oy1 = std::min(Ho, oy0 + kFirBandRows);
      // Input rows used by this band: U row u = py - pad_y0, py in [oy0*dy, (oy1-1)*dy + kh).
      const int64_t u_lo = oy0 * dy - p.pad_y0, u_hi = (oy1 - 1) * dy + kh - 1 - p.pad_y0;
      const int64_t iy_lo = std::max<int64_t>(0, (u_lo + uy - 1) >= 0 ? (u_lo + uy - 1) / uy : 0);
      const int64_t iy_hi = std::min<int64_t>(p.H - 1, u_hi >= 0 ? u_hi / uy : -1);
      for (int64_t iy = iy_lo; iy <= iy_hi; ++iy)
        fir_build_row(p, xp + iy * p.x_sh, cache + (iy - iy_lo) * pitch, Wpad, plen);
      for (int64_t oy = oy0; oy < oy1; ++oy) {
        // Kernel rows that hit a non-zero (input) row of U.
        int64_t nr = 0;
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t u = oy * dy + ky - p.pad_y0;
          if (u < 0 || u % uy != 0 || u / uy >= p.H) {
            rows[ky] = nullptr;
            continue;
          }
          rows[ky] = cache + (u / uy - iy_lo) * pitch;
          ++nr;
        }
        float* dst = op + oy * p.o_sh;
        // 4 vectors (32 outputs) per pass: independent FMA chains; the last pass of a row computes only
        // the vectors it stores (a 4..16 px wide plane would otherwise do 2-4x the FMAs it needs).
        for (int64_t ox = 0; ox < Wo; ox += 4 * kVecLen) {
          const int64_t left = Wo - ox;
          if (left > 3 * kVecLen)
            fir_row_pass<4>(rows, nr, kh, kw, kfp, koff, ox, Wo, dst, p.o_sw);
          else if (left > 2 * kVecLen)
            fir_row_pass<3>(rows, nr, kh, kw, kfp, koff, ox, Wo, dst, p.o_sw);
          else if (left > kVecLen)
            fir_row_pass<2>(rows, nr, kh, kw, kfp, koff, ox, Wo, dst, p.o_sw);
          else
            fir_row_pass<1>(rows, nr, kh, kw, kfp, koff, ox, Wo, dst, p.o_sw);
        }
      }
    }
  });
}

}  // namespace detail

// General upfirdn2d. Throws std::invalid_argument on bad parameters.
template <class ParallelFor>
void upfirdn2d(const UpFirDn2dParams& p, const ParallelFor& pf) {
  if (p.up_x < 1 || p.up_y < 1 || p.down_x < 1 || p.down_y < 1)
    throw std::invalid_argument("upfirdn2d: up/down must be >= 1");
  if (p.kh < 1 || p.kw < 1 || !p.kernel || !p.x || !p.out)
    throw std::invalid_argument("upfirdn2d: bad kernel or tensors");
  if (p.H_out() < 1 || p.W_out() < 1) throw std::invalid_argument("upfirdn2d: empty output");
  detail::upfirdn2d_impl(p, pf);
}

// ---------------------------------------------------------------------------
// out += upfirdn2d(skip, outer([1,3,3,1])/64*4, up=2, pad=(2,1)) : the
// StyleGAN2 ToRGB skip upsampling, fused with the add.

template <class ParallelFor>
void add_upsampled_skip(const AddUpsampledSkipParams& p, const ParallelFor& pf) {
  if (!p.skip || !p.out || p.H < 1 || p.W < 1)
    throw std::invalid_argument("add_upsampled_skip: bad arguments");
  const int64_t Ho = 2 * p.H, Wo = 2 * p.W;
  constexpr int64_t band_rows = 32;
  const int64_t bands = (Ho + band_rows - 1) / band_rows;
  const size_t ws = carve_bytes(sizeof(float) * (Wo + 16));
  pf(0, p.N * p.C * bands, 1, [&](int64_t t0, int64_t t1) {
    float* row = static_cast<float*>(thread_workspace(ws));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t plane = t / bands, band = t % bands;
      const int64_t n = plane / p.C, c = plane % p.C;
      const float* s = p.skip + n * p.s_sn + c * p.s_sc;
      float* o = p.out + n * p.o_sn + c * p.o_sc;
      const int64_t y1 = std::min(Ho, (band + 1) * band_rows);
      for (int64_t y = band * band_rows; y < y1; ++y) {
        upsample2_row(s, p.s_sh, p.s_sw, p.H, p.W, y, row, false);
        float* d = o + y * p.o_sh;
        if (p.o_sw == 1) {
          for (int64_t x = 0; x < Wo; ++x) d[x] += row[x];
        } else {
          for (int64_t x = 0; x < Wo; ++x) d[x * p.o_sw] += row[x];
        }
      }
    }
  });
}

ANYCOST_CPU_NAMESPACE_END
