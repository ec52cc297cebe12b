// Parameter structs of the CPU kernels (plain data, no code): shared by every instruction-set
// level and by the torch glue, so they live in anycost::cpu itself, outside the per-level
// namespaces (see isa.h); the modulated conv's are in modconv_params.h, the int8 conv's in
// qconv_params.h.
#pragma once

#include <cstdint>

namespace anycost {
namespace cpu {

constexpr int kRgbChannels = 3;  // the planes of a ToRGB's output

// Optional ToRGB head of a plain conv, fp32 or int8 (the generator's last conv of a resolution and
// the ToRGB after it, fused; modconv_rgb.h): the final outputs v[o] of the conv (after the
// activation) also give
//   rgb[n, c] = bias[c] + sum_o w[n, c, o] v[o]  [+ upfirdn2d-up2(skip)[n, c]],   c < 3
// accumulated while v is still in cache, so the ToRGB never reads the conv's output back.
struct RgbHead {
  const float* w = nullptr;     // [N, 3, C_out] contiguous: the ToRGB weight x its scale x its style
  const float* bias = nullptr;  // [3]
  const float* skip = nullptr;  // optional [N, 3, H/2, W/2] (even H and W only)
  int64_t skip_sn = 0, skip_sc = 0, skip_sh = 0, skip_sw = 1;
  float* out = nullptr;  // [N, 3, H, W] contiguous; null: no head
};

enum class Activation : int { Linear = 0, LRelu = 1 };

// upfirdn2d (see upfirdn2d_blocked.h for the semantics).
struct UpFirDn2dParams {
  int64_t N = 1, C = 1, H = 0, W = 0;  // x is [N, C, H, W]
  const float* x = nullptr;
  int64_t x_sn = 0, x_sc = 0, x_sh = 0, x_sw = 1;
  const float* kernel = nullptr;  // [kh, kw], applied as a true convolution
  int64_t kh = 1, kw = 1;
  int64_t k_sh = 1, k_sw = 1;  // set k_sh = kw for a contiguous kernel
  int up_x = 1, up_y = 1, down_x = 1, down_y = 1;
  int64_t pad_x0 = 0, pad_x1 = 0, pad_y0 = 0, pad_y1 = 0;
  float* out = nullptr;  // [N, C, H_out, W_out]
  int64_t o_sn = 0, o_sc = 0, o_sh = 0, o_sw = 1;

  int64_t H_out() const { return (H * up_y + pad_y0 + pad_y1 - kh) / down_y + 1; }
  int64_t W_out() const { return (W * up_x + pad_x0 + pad_x1 - kw) / down_x + 1; }
};

// out += upfirdn2d(skip, outer([1,3,3,1])/64*4, up=2, pad=(2,1)) : the
// StyleGAN2 ToRGB skip upsampling, fused with the add.
struct AddUpsampledSkipParams {
  int64_t N = 1, C = 3, H = 0, W = 0;  // skip is [N, C, H, W]; out is [N, C, 2H, 2W]
  const float* skip = nullptr;
  int64_t s_sn = 0, s_sc = 0, s_sh = 0, s_sw = 1;
  float* out = nullptr;
  int64_t o_sn = 0, o_sc = 0, o_sh = 0, o_sw = 1;
};

// Fused bias + activation (see bias_act_blocked.h).
struct BiasActParams {
  int64_t N = 1, C = 1, S = 1;
  const float* x = nullptr;
  int64_t x_sn = 0, x_sc = 0, x_ss = 1;
  const float* bias = nullptr;  // optional [C]
  int64_t bias_s = 1;
  float* out = nullptr;  // may equal x (in place, same strides)
  int64_t o_sn = 0, o_sc = 0, o_ss = 1;
  Activation act = Activation::Linear;
  float alpha = 0.2f;
  float gain = 1.f;
};

// Depthwise 3x3 conv, stride 1, padding 1 (reflected or zero), + bias, optionally followed by an
// instance norm of each output plane (see depthwise_conv3x3.h).
struct DepthwiseConv3x3Params {
  int64_t N = 1, C = 1, H = 0, W = 0;
  const float* x = nullptr;  // [N, C, H, W], any strides
  int64_t x_sn = 0, x_sc = 0, x_sh = 0, x_sw = 1;
  const float* weight = nullptr;  // [C, 1, 3, 3], any strides
  int64_t w_sc = 9, w_sh = 3, w_sw = 1;
  const float* bias = nullptr;  // optional [C]
  int64_t bias_s = 1;
  float* out = nullptr;  // [N, C, H, W] contiguous
  bool reflect = true;  // reflection padding (needs H, W >= 2), else zeros
  bool normalize = false;  // instance norm of each output plane: (v - mean) / sqrt(biased var + eps)
  float eps = 1e-5f;
  int num_threads = 1;  // threads behind parallel_for: bands of rows (parallel.h, page_bands)
};

// Pointwise (1x1) conv + bias, optionally followed by an instance norm of each output plane and a ReLU
// (see pointwise_conv.h).
struct PointwiseConvParams {
  int64_t N = 1, C_in = 1, C_out = 1, S = 0;  // S: positions per plane (H * W)
  const float* x = nullptr;  // [N, C_in, S], positions contiguous
  int64_t x_sn = 0, x_sc = 0;
  const float* weight = nullptr;  // [C_out, C_in], any strides
  int64_t w_so = 0, w_si = 1;
  const float* bias = nullptr;  // optional [C_out]
  int64_t bias_s = 1;
  float* out = nullptr;  // [N, C_out, S] contiguous
  bool normalize = false;  // instance norm of each output plane (biased variance + eps)
  bool relu = false;  // after the norm (or the bias)
  float eps = 1e-5f;
  const float* residual = nullptr;  // optional [N, C_out, S] contiguous, added last
  int64_t row_len = 1;  // positions per image row (dividing S): the threads' bands split planes at whole rows
  int num_threads = 1;  // threads behind parallel_for: bands of rows (parallel.h, page_bands)
};

// Dense K x K conv (stride 1 or 2, padding K / 2: reflected or zeros) + bias for few channels, optionally followed
// by the instance norm of each output plane and a ReLU (see small_conv.h).
struct SmallConv2dParams {
  int64_t N = 1, C_in = 1, C_out = 1, H = 0, W = 0;  // x is [N, C_in, H, W]
  int K = 3, stride = 1;  // K odd
  const float* x = nullptr;  // any strides
  int64_t x_sn = 0, x_sc = 0, x_sh = 0, x_sw = 1;
  const float* weight = nullptr;  // [C_out, C_in, K, K], any strides
  int64_t w_so = 0, w_si = 0, w_sh = 0, w_sw = 1;
  const float* bias = nullptr;  // optional [C_out]
  int64_t bias_s = 1;
  float* out = nullptr;  // [N, C_out, H_out, W_out] contiguous
  bool reflect = true;  // reflection padding (needs K / 2 < H and < W), else zeros
  bool normalize = false;  // instance norm of each output plane: (v - mean) / sqrt(biased var + eps)
  bool relu = false;  // after the norm (or the bias)
  float eps = 1e-5f;
  const float* residual = nullptr;  // optional [N, C_out, H_out, W_out] contiguous, added last
  int num_threads = 1;  // threads behind parallel_for: one band of rows each (parallel.h, i2i_bands)

  int64_t H_out() const { return (H + 2 * (K / 2) - K) / stride + 1; }
  int64_t W_out() const { return (W + 2 * (K / 2) - K) / stride + 1; }
};

// 3x3 transposed conv of stride 2, padding 1, output padding 1 (an [H, W] input gives [2H, 2W]) + bias for few
// channels, optionally followed by the instance norm of each output plane and a ReLU (see small_conv_transpose.h).
struct SmallConvTranspose2dParams {
  int64_t N = 1, C_in = 1, C_out = 1, H = 0, W = 0;  // x is [N, C_in, H, W]
  const float* x = nullptr;  // any strides
  int64_t x_sn = 0, x_sc = 0, x_sh = 0, x_sw = 1;
  const float* weight = nullptr;  // [C_in, C_out, 3, 3] (torch's transposed-conv layout), any strides
  int64_t w_si = 0, w_so = 0, w_sh = 0, w_sw = 1;
  const float* bias = nullptr;  // optional [C_out]
  int64_t bias_s = 1;
  float* out = nullptr;  // [N, C_out, 2H, 2W] contiguous
  bool normalize = false, relu = false;
  float eps = 1e-5f;
  int num_threads = 1;  // threads behind parallel_for: one band of rows each (parallel.h, i2i_bands)
};

// The epilogue of the bf16 styled conv (see bf16_epilogue.h): bf16 conv output in, bf16 activations out, both
// with the channels of a position contiguous (torch's channels_last).
struct Bf16EpilogueParams {
  int64_t N = 1, C = 1, H = 0, W = 0;  // the output [N, C, H, W]
  // Plain: [N, H, W, C]. upsample: the four sub-pixel phase planes of the stride-2 transposed conv,
  // [N, H / 2 + 1, W / 2 + 1, 4 * C] (channel (2 * phase_y + phase_x) * C + c).
  const uint16_t* x = nullptr;
  int64_t x_sn = 0, x_sh = 0, x_sw = 0;
  bool upsample = false;  // then H and W are even
  const float* scale = nullptr;  // optional [N, C], channels contiguous
  int64_t scale_sn = 0;
  const float* bias = nullptr;  // optional [C]
  int64_t bias_s = 1;
  const float* noise = nullptr;  // optional [N or 1, H, W] (noise_sn = 0 for one shared plane)
  int64_t noise_sn = 0, noise_sh = 0, noise_sw = 1;
  float noise_strength = 0.f;
  bool activate = false;  // leaky ReLU with slope alpha (no gain)
  float alpha = 0.2f;
  uint16_t* out = nullptr;  // [N, H, W, C], channels contiguous; may be null with rgb (not kept)
  int64_t o_sn = 0, o_sh = 0, o_sw = 0;
  // Optional, plain layers only: the ToRGB of the bf16-rounded result, summed in fp32:
  //   rgb[n, o, y, x] = rgb_bias[o] + rgb_skip[n, o, y, x] + sum_c rgb_w[n, o, c] * out[n, y, x, c]
  float* rgb = nullptr;              // [N, 3, H, W] contiguous
  const float* rgb_w = nullptr;      // [N, 3, C] contiguous: the modulated ToRGB weight of each sample
  const float* rgb_bias = nullptr;   // [3]
  const float* rgb_skip = nullptr;   // optional [N, 3, H, W] contiguous: the upsampled RGB of the scale before
};

}  // namespace cpu
}  // namespace anycost
