// Epilogues of the fused modulated convolution (see modulated_conv_blocked.h).
//
// They run on an L2-resident tile of raw convolution sums (acc) right after
// the micro-kernels finished it, and write each final output element once:
//
//   out = act(scale[o] * conv + noise_strength * noise + bias[o]) [+ up2(skip)]
//
// where scale[o] = weight_scale * demod[o] and act(v) = (v > 0 ? v : alpha v) * gain.
// For the upsampling conv the tile holds the four sub-pixel phases of the
// stride-2 transposed conv, and the epilogue also applies the 4x4 [1,3,3,1]
// blur (separable: factors 1/4, 3/4, 3/4, 1/4 per axis) while interleaving
// the phases into the 2x larger output.
#pragma once

#include "isa.h"

#include <cstdint>

#include "modconv_params.h"  // streams_output
#include "simd.h"

ANYCOST_CPU_NAMESPACE_BEGIN


// Per-output-channel epilogue constants.
struct EpilogueChannel {
  float scale = 1.f;  // weight_scale * demod coefficient
  float bias = 0.f;
  float noise_strength = 0.f;
  const float* noise = nullptr;  // noise plane of this sample (or null)
  int64_t noise_sh = 0, noise_sw = 1;
  bool act = false;
  float alpha = 0.2f, gain = 1.f;
  float* out = nullptr;  // output plane of this channel (null: not written)
  int64_t out_sh = 0, out_sw = 1;
  bool stream = false;  // write out past the caches (streams_output, modconv_params.h)
  float* peak = nullptr;  // with out: raised to max |out| over the values written (null: not tracked)
  // RGB head (modconv_rgb.h): the final values also accumulate, times rgb_w[c], into the three planes
  // at rgb (plane pitch rgb_sc, row pitch rgb_sh) that hold image rows and columns from rgb_y0, rgb_x0;
  // null: no head.
  float* rgb = nullptr;
  int64_t rgb_sc = 0, rgb_sh = 0, rgb_y0 = 0, rgb_x0 = 0;
  float rgb_w[3] = {};
};

// Everything of channel o of sample n but the scale, from a conv's params (ModConvParams or QConvParams, whose
// bias, noise, activation and output fields are the same): bias, noise, activation, output plane, streaming, peak.
template <class Params>
void set_epilogue(EpilogueChannel& e, const Params& p, int64_t n, int64_t o) {
  e.bias = p.bias ? p.bias[o * p.bias_s] : 0.f;
  if (p.noise) {
    e.noise = p.noise + n * p.noise_sn;
    e.noise_sh = p.noise_sh;
    e.noise_sw = p.noise_sw;
    e.noise_strength = p.noise_strength;
  }
  e.act = p.act == Activation::LRelu;
  e.alpha = p.act_alpha;
  e.gain = p.act_gain;
  e.out = p.out ? p.out + n * p.o_sn + o * p.o_sc : nullptr;
  e.out_sh = p.o_sh;
  e.out_sw = p.o_sw;
  e.stream = streams_output(int64_t(sizeof(float)) * p.N * p.C_out * p.H_out() * p.W_out());
  e.peak = p.out && p.out_peak ? p.out_peak + n * p.C_out + o : nullptr;
}

// Register-resident copy of the constants of one channel (a local, so the
// compiler need not reload them after every store through a float*).
struct EpilogueRegs {
  vfloat scale, bias, ns, alpha, gain;
  const float* noise;
  int64_t noise_sh, noise_sw;
  bool act;
  float* out;
  int64_t out_sh, out_sw;
  bool stream;
  float* peak;
  mutable vfloat peak_lanes;  // max |out| so far per lane (peak only)
  float* rgb;
  int64_t rgb_sc, rgb_sh, rgb_y0, rgb_x0;
  vfloat rgb_w[3];
  explicit EpilogueRegs(const EpilogueChannel& e)
      : scale(vset1(e.scale)), bias(vset1(e.bias)), ns(vset1(e.noise_strength)),
        alpha(vset1(e.alpha)), gain(vset1(e.gain)), noise(e.noise), noise_sh(e.noise_sh),
        noise_sw(e.noise_sw), act(e.act), out(e.out), out_sh(e.out_sh), out_sw(e.out_sw),
        stream(e.stream), peak(e.peak), peak_lanes(vzero()), rgb(e.rgb), rgb_sc(e.rgb_sc), rgb_sh(e.rgb_sh),
        rgb_y0(e.rgb_y0), rgb_x0(e.rgb_x0),
        rgb_w{vset1(e.rgb_w[0]), vset1(e.rgb_w[1]), vset1(e.rgb_w[2])} {}
};

// Finish nv (<= kVecLen) consecutive outputs of row y starting at column x0.
// `skip_row` (contiguous, already upsampled) is added last when non-null.
ANYCOST_INLINE void finish_store(const EpilogueRegs& e, vfloat v, int64_t y, int64_t x0, int nv,
                                 const float* skip_row) {
  vfloat add = e.bias;
  if (e.noise) {
    const float* np = e.noise + y * e.noise_sh + x0 * e.noise_sw;
    add = vfma(e.ns, nv == kVecLen && e.noise_sw == 1 ? vload(np)
                                                      : vload_strided(np, e.noise_sw, nv), add);
  }
  v = vfma(v, e.scale, add);
  if (e.act) v = vmul(vlrelu(v, e.alpha), e.gain);
  if (skip_row) v = vadd(v, vload_n(skip_row + x0, nv));
  // The RGB sums are loaded before the output store: a load after a store to the same 4 KiB offset
  // (the output's planes and rows are 4 KiB multiples apart) waits for it.
  float* r = e.rgb ? e.rgb + (y - e.rgb_y0) * e.rgb_sh + (x0 - e.rgb_x0) : nullptr;
  vfloat rgb[3];
  if (r)
    for (int c = 0; c < 3; ++c) rgb[c] = nv == kVecLen ? vload(r + c * e.rgb_sc) : vload_n(r + c * e.rgb_sc, nv);
  if (e.out) {
    float* op = e.out + y * e.out_sh + x0 * e.out_sw;
    if (nv == kVecLen && e.out_sw == 1 && e.stream)
      vstore_stream(op, v);
    else if (nv == kVecLen && e.out_sw == 1)
      vstore(op, v);
    else
      vstore_strided(op, e.out_sw, v, nv);
    if (e.peak) e.peak_lanes = vabsmax(e.peak_lanes, nv == kVecLen ? v : vfirst_n(v, nv));
  }
  if (r) {
    for (int c = 0; c < 3; ++c) {
      rgb[c] = vfma(e.rgb_w[c], v, rgb[c]);
      if (nv == kVecLen)
        vstore(r + c * e.rgb_sc, rgb[c]);
      else
        vstore_n(r + c * e.rgb_sc, rgb[c], nv);
    }
  }
}

// After an epilogue's last finish_store: orders its streamed stores and folds its peak into e.peak, which
// other threads' epilogues of the same channel (other row bands) may raise at the same time.
ANYCOST_INLINE void finish_epilogue(const EpilogueRegs& e) {
  if (e.stream) vstream_fence();
  if (!e.peak) return;
  float v = vhmax(e.peak_lanes), cur;
  __atomic_load(e.peak, &cur, __ATOMIC_RELAXED);
  while (v > cur && !__atomic_compare_exchange(e.peak, &cur, &v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

// ---------------------------------------------------------------------------
// 2x upsampling of one row of a low-resolution image with the StyleGAN2
// [1,3,3,1] filter (upfirdn2d(x, outer(k,k)/64*4, up=2, pad=(2,1))):
//   row 2m   = 1/4 x[m-1] + 3/4 x[m],   row 2m+1 = 3/4 x[m] + 1/4 x[m+1]
// and the same along columns. Writes (or adds into) dst[0 .. 2*Ws).
inline void upsample2_row(const float* src, int64_t s_sh, int64_t s_sw, int64_t Hs, int64_t Ws,
                          int64_t y, float* dst, bool add) {
  const int64_t m = y >> 1;
  int64_t r0, r1;  // rows contributing with 1/4 and 3/4
  if ((y & 1) == 0) {
    r0 = m - 1;
    r1 = m;
  } else {
    r0 = m + 1;
    r1 = m;
  }
  const float* p0 = (r0 >= 0 && r0 < Hs) ? src + r0 * s_sh : nullptr;
  const float* p1 = src + r1 * s_sh;
  auto col = [&](int64_t n) -> float {  // vertically filtered column n (0 outside)
    if (n < 0 || n >= Ws) return 0.f;
    float v = 0.75f * p1[n * s_sw];
    if (p0) v += 0.25f * p0[n * s_sw];
    return v;
  };
  float prev = 0.f, cur = col(0);
  for (int64_t n = 0; n < Ws; ++n) {
    float next = col(n + 1);
    float e = 0.25f * prev + 0.75f * cur;
    float o = 0.75f * cur + 0.25f * next;
    if (add) {
      dst[2 * n] += e;
      dst[2 * n + 1] += o;
    } else {
      dst[2 * n] = e;
      dst[2 * n + 1] = o;
    }
    prev = cur;
    cur = next;
  }
}

// ---------------------------------------------------------------------------
// Plain (no upsampling) epilogue for rows [y0, y1) of one channel.
// acc holds the raw sums of this channel with row pitch Wp, first row = y0: fp32 (the fp32 convs) or
// int32 (the int8 conv, qconv_blocked.h; converted to fp32 here). Reads up to kVecLen - 1 values past
// the last row's W.
template <class Acc>
void epilogue_plain(const EpilogueChannel& ec, const Acc* acc, int64_t Wp, int64_t y0, int64_t y1,
                    int64_t W, const float* skip, int64_t skip_sh, int64_t skip_sw, int64_t skip_H,
                    float* skip_row) {
  const EpilogueRegs e(ec);
  for (int64_t y = y0; y < y1; ++y) {
    const Acc* a = acc + (y - y0) * Wp;
    if (skip) upsample2_row(skip, skip_sh, skip_sw, skip_H, W / 2, y, skip_row, false);
    for (int64_t x = 0; x < W; x += kVecLen) {
      int nv = static_cast<int>(W - x < kVecLen ? W - x : kVecLen);
      finish_store(e, vload_acc(a + x), y, x, nv, skip ? skip_row : nullptr);
    }
  }
  finish_epilogue(e);
}

// ---------------------------------------------------------------------------
// Upsampling epilogue. The four phase planes of one channel hold, for grid
// rows j = 0 .. and columns n = 0 .. W (pitch Wp = W + 1),
//   ee = t[2m][2n], eo = t[2m][2n+1], oe = t[2m+1][2n], oo = t[2m+1][2n+1]
// of the transposed-conv output t (size 2H+1, implicitly zero at -1 and
// 2H+1: column n = W of eo/oo and the element before each plane are zero).
// Grid row j corresponds to m = m0 - 1 + j. Produces output rows 2m, 2m+1
// for m in [m0, m1). vrow_e / vrow_o: scratch of >= W + 2*kVecLen floats each.
// The planes are fp32 (the fp32 convs) or int32 (the int8 conv, converted to fp32 as they are read).
template <class Acc>
void epilogue_up(const EpilogueChannel& ec, const Acc* ee, const Acc* eo, const Acc* oe, const Acc* oo,
                 int64_t Wp, int64_t m0, int64_t m1, int64_t W, float* vrow_e, float* vrow_o) {
  const EpilogueRegs e(ec);
  const vfloat q1 = vset1(0.25f), q3 = vset1(0.75f);
  // vrow_o[0] is the vertically blurred odd column n = -1 (always 0).
  float* ve = vrow_e;
  float* vo = vrow_o + 1;
  vrow_o[0] = 0.f;
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t j = m - m0 + 1;
    const Acc* ee0 = ee + j * Wp;
    const Acc* eo0 = eo + j * Wp;
    const Acc* oe0 = oe + j * Wp;
    const Acc* oo0 = oo + j * Wp;
    for (int par = 0; par < 2; ++par) {
      // Vertical pass over columns n = 0 .. W (inclusive) of both column phases.
      //   even row 2m:  1/4 odd[m-1] + 3/4 even[m] + 3/4 odd[m] + 1/4 even[m+1]
      //   odd row 2m+1: 1/4 even[m]  + 3/4 odd[m]  + 3/4 even[m+1] + 1/4 odd[m+1]
      const Acc *aE, *bE, *cE, *dE, *aO, *bO, *cO, *dO;
      if (par == 0) {
        aE = oe0 - Wp, bE = ee0, cE = oe0, dE = ee0 + Wp;
        aO = oo0 - Wp, bO = eo0, cO = oo0, dO = eo0 + Wp;
      } else {
        aE = ee0, bE = oe0, cE = ee0 + Wp, dE = oe0 + Wp;
        aO = eo0, bO = oo0, cO = eo0 + Wp, dO = oo0 + Wp;
      }
      for (int64_t n = 0; n <= W; n += kVecLen) {
        vfloat sE = vmul(q1, vadd(vload_acc(aE + n), vload_acc(dE + n)));
        sE = vfma(q3, vadd(vload_acc(bE + n), vload_acc(cE + n)), sE);
        vstore(ve + n, sE);
        vfloat sO = vmul(q1, vadd(vload_acc(aO + n), vload_acc(dO + n)));
        sO = vfma(q3, vadd(vload_acc(bO + n), vload_acc(cO + n)), sO);
        vstore(vo + n, sO);
      }
      // Horizontal pass + interleave:
      //   out[2n]   = 1/4 vo[n-1] + 3/4 ve[n] + 3/4 vo[n] + 1/4 ve[n+1]
      //   out[2n+1] = 1/4 ve[n]   + 3/4 vo[n] + 3/4 ve[n+1] + 1/4 vo[n+1]
      const int64_t y = 2 * m + par;
      for (int64_t n = 0; n < W; n += kVecLen) {
        vfloat e0 = vload(ve + n), e1 = vload(ve + n + 1);
        vfloat om = vload(vo + n - 1), o0 = vload(vo + n), o1 = vload(vo + n + 1);
        vfloat a = vfma(q3, vadd(e0, o0), vmul(q1, vadd(om, e1)));
        vfloat b = vfma(q3, vadd(o0, e1), vmul(q1, vadd(e0, o1)));
        vfloat lo, hi;
        vinterleave(a, b, lo, hi);
        const int64_t cnt = 2 * (W - n);  // valid outputs from column 2n
        finish_store(e, lo, y, 2 * n, static_cast<int>(cnt < kVecLen ? cnt : kVecLen), nullptr);
        if (cnt > kVecLen)
          finish_store(e, hi, y, 2 * n + kVecLen,
                       static_cast<int>(cnt - kVecLen < kVecLen ? cnt - kVecLen : kVecLen), nullptr);
      }
    }
  }
  finish_epilogue(e);
}

ANYCOST_CPU_NAMESPACE_END
