// Parameters of the int8 styled convolution (see qconv_blocked.h). Plain data shared by every
// instruction-set level and by the torch glue, so outside the per-level namespaces (see isa.h).
//
// The packed weight layout is the same at every level (so one packed tensor serves whichever level
// runs): [ceil(C_out/8)][ceil(C_in/4)][K*K][8][4] int8, i.e. tiles of kQPackMR = 8 output channels;
// per tile, groups of kQGroup = 4 input channels; per group, the K*K taps (row-major); per tap the 8
// channels' 4 weights as one 32-bit word (the operand a vpdpbusd / vpmaddubsw broadcasts). Channels
// past C_out or C_in are zero.
#pragma once

#include <cstdint>

#include "op_params.h"  // Activation, RgbHead

namespace anycost {
namespace cpu {

constexpr int kQPackMR = 8;  // output channels per packed tile
constexpr int kQGroup = 4;   // input channels per 32-bit word (one dot product)
// Activations and weights are symmetric: q in [-kQMax, kQMax] (never -128: see qconv_microkernel.h).
constexpr int kQMax = 127;

// Packs int8 weights (a strided view [C_out, C_in, K, K]) into the layout above.
struct QConvPackParams {
  int64_t C_out = 0, C_in = 0;
  int K = 3;  // 1 or 3
  const int8_t* weight = nullptr;
  int64_t w_so = 0, w_si = 0, w_sh = 0, w_sw = 1;
  int8_t* packed = nullptr;  // qconv_packed_bytes(C_out, C_in, K) bytes
  int32_t* wsum = nullptr;   // [C_out, K*K]: sum over the input channels of each (output channel, tap)'s
                             // weights (the zero-point compensation, per tap for the upsampling phases)
};

// Tiles of output channels and groups of input channels of a packed [C_out, C_in] weight.
inline int64_t qconv_out_tiles(int64_t c_out) { return (c_out + kQPackMR - 1) / kQPackMR; }
inline int64_t qconv_in_groups(int64_t c_in) { return (c_in + kQGroup - 1) / kQGroup; }
inline int64_t qconv_packed_bytes(int64_t c_out, int64_t c_in, int k) {
  return qconv_out_tiles(c_out) * kQPackMR * qconv_in_groups(c_in) * kQGroup * k * k;
}

// The int8 styled conv, per sample n:
//   m[n,i]   = float32(float32(1) / float32(act_scale)) * styles[n,i]    (float32)
//   q[n,i]   = clamp(round_half_even(x[n,i] * m[n,i]), -127, 127)      (the activations, int8)
//   no upsample: acc[n,o] = sum_{i, ky, kx} W[o,i,ky,kx] * q[n,i, y+ky-K/2, x+kx-K/2]  (int32, zero outside)
//   upsample (K=3): t[n,o] = conv_transpose2d(q, W, stride 2) (int32, 2H+1 x 2W+1), then
//                   acc = float32(t) blurred by outer([1,3,3,1])/64 * 4 with padding 1 (2H x 2W), as in
//                   ModConvParams (the blur in fp32, on the integers converted to fp32)
//   out      = act(out_scale[n,o] * acc + noise_strength * noise + bias[o])
//   with an RGB head (not upsampling): rgb[n, c] = rgb.bias[c] + sum_o rgb.w[n, c, o] out[n, o]
//                                      [+ the 2x-upsampled rgb.skip], as in ModConvParams
// with act(v) = (v > 0 ? v : alpha v) * gain, W the packed int8 weight. The caller folds the
// dequantisation (act_scale * weight scale of channel o) and the demodulation into out_scale.
// With dynamic_scale, act_scale is each sample's own, s[n] = max(float32(max_i float32(max_yx |x[n,i]| *
// |styles[n,i]|) / 127), FLT_MIN), found by a pass over x before the quantisation, and the kernel
// multiplies out_scale[n, o] by s[n] (float32) itself: out_scale then holds only the weight scale and the
// demodulation. (A NaN in x leaves that sample's result unspecified, as with a calibrated scale.)
// Float pointers are fp32 with strides in elements (any, as in ModConvParams).
struct QConvParams {
  int64_t N = 1, C_in = 0, C_out = 0, H = 0, W = 0;
  int K = 3;              // 1 or 3
  bool upsample = false;  // K == 3 only: output is [N, C_out, 2H, 2W]

  const float* x = nullptr;  // [N, C_in, H, W]
  int64_t x_sn = 0, x_sc = 0, x_sh = 0, x_sw = 1;
  const float* styles = nullptr;  // [N, C_in]
  int64_t s_sn = 0, s_sc = 1;
  float act_scale = 1.f;
  bool dynamic_scale = false;  // act_scale per sample, from x (above); act_scale is then unused
  // Optional with dynamic_scale: max_yx |x[n, i]| per input channel, known already (the out_peak of the conv
  // that wrote x), which saves the pass over x; the scales are the same.
  const float* x_peak = nullptr;  // [N, C_in], contiguous

  const int8_t* packed = nullptr;  // packed weight of [C_out, C_in, K, K] (layout above)
  const int32_t* wsum = nullptr;   // [C_out, K*K] from the packing
  const float* out_scale = nullptr;  // [N, C_out]
  int64_t os_sn = 0, os_sc = 1;

  const float* noise = nullptr;  // optional [N or 1, 1, H_out, W_out]; noise_sn = 0 broadcasts
  int64_t noise_sn = 0, noise_sh = 0, noise_sw = 1;
  float noise_strength = 0.f;
  const float* bias = nullptr;  // optional [C_out]
  int64_t bias_s = 1;
  Activation act = Activation::Linear;
  float act_alpha = 0.2f, act_gain = 1.41421356237309505f;

  float* out = nullptr;  // [N, C_out, H_out, W_out]; null: not written (a plain conv with an RGB head)
  int64_t o_sn = 0, o_sc = 0, o_sh = 0, o_sw = 1;
  RgbHead rgb;  // optional ToRGB of the output (plain conv only; op_params.h, modconv_rgb.h)
  float* out_peak = nullptr;  // optional [N, C_out]: as ModConvParams::out_peak

  int64_t H_out() const { return upsample ? 2 * H : H; }
  int64_t W_out() const { return upsample ? 2 * W : W; }
};

// Blocking knobs (defaults measured on AMD Zen 4: 32 KiB L1d, 1 MiB L2).
struct QConvBlocking {
  int64_t mc = 64;                 // output channels per task block (rounded to kQPackMR)
  int64_t kc = 512;                // input channels per block (rounded to kQGroup)
  int64_t acc_bytes = 256 * 1024;  // budget of the int32 accumulator tile (plain conv)
  // The upsampling conv's (4 phase planes and 2 rows carried from chunk to chunk): within 256 KiB its chunks at
  // 256-1024 px hold one grid row and carry two, and a tile of several rows, past the L2, measured faster
  // (whole 1024 / 1.0 int8 forwards 3-9%, 256 / 1.0 6%, in-process alternations on a Zen 4).
  int64_t up_acc_bytes = 2048 * 1024;
  int num_threads = 1;             // threads behind parallel_for (task balancing)
};

}  // namespace cpu
}  // namespace anycost
