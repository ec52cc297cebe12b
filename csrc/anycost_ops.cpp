// The only TORCH_LIBRARY of anycost: op schemas. Backends register their kernels in
// csrc/<op>_cpu.cpp (and later csrc/<op>_cuda.cpp); fake kernels and autograd live in
// anycost/ops/_registry.py. The Python reference twins are in anycost/ops/ref.py.
#include <torch/library.h>

TORCH_LIBRARY(anycost, m) {
  // Styled conv on (possibly sliced, strided) weight views: modulation, demodulation, optional 2x
  // upsampling with the [1,3,3,1] blur, noise * noise_strength, bias and scaled leaky ReLU in one pass.
  m.def(
      "modulated_conv2d(Tensor x, Tensor weight, Tensor styles, float weight_scale, bool demodulate, "
      "bool upsample, Tensor? noise, Tensor? noise_strength, Tensor? bias, bool activate) -> Tensor");
  // ToRGB: 1x1 modulated conv without demodulation + bias + the 2x-upsampled skip image.
  m.def(
      "to_rgb(Tensor x, Tensor weight, Tensor styles, Tensor bias, float weight_scale, Tensor? skip) -> Tensor");
  // A plain styled conv (modulated_conv2d with demodulate, activate, no upsample) and the ToRGB that reads its
  // output, fused: returns (the conv's output, or an empty tensor without keep_x; the ToRGB's output).
  m.def(
      "styled_conv_to_rgb(Tensor x, Tensor weight, Tensor styles, float weight_scale, Tensor? noise, "
      "Tensor? noise_strength, Tensor? bias, Tensor rgb_weight, Tensor rgb_styles, Tensor rgb_bias, "
      "float rgb_weight_scale, Tensor? skip, bool keep_x) -> (Tensor, Tensor)");
  // upsample (zero insertion) by `up`, pad (x0, x1, y0, y1; negative crops), FIR-filter with `kernel`
  // (a true convolution), keep every `down`-th sample: StyleGAN2's blur / up / downsampling.
  m.def("upfirdn2d(Tensor x, Tensor kernel, int up, int down, int[4] pad) -> Tensor");
  // act(x + bias[channel]) * gain, act 'linear' | 'lrelu' (slope alpha); gain None: 1 linear, sqrt(2) lrelu.
  m.def("bias_act(Tensor x, Tensor? bias, str act, float alpha, float? gain) -> Tensor");
  // Depthwise 3x3 conv, stride 1, padding 1 (reflected, else zeros), + bias; with `normalize`, then the
  // instance norm of each output plane (no affine, biased variance + eps): the image-to-image students'
  // separable blocks.
  m.def("depthwise_conv3x3(Tensor x, Tensor weight, Tensor? bias, bool reflect, bool normalize, float eps) -> Tensor");
  // 1x1 conv + bias; with `normalize` the instance norm of each output plane, with `relu` then a ReLU: the
  // pointwise half of those blocks with the norm (and ReLU) that follows it.
  m.def("pointwise_conv(Tensor x, Tensor weight, Tensor? bias, bool normalize, bool relu, float eps) -> Tensor");
  // Dense K x K conv (K odd, stride 1 or 2, padding K / 2: reflected, else zeros) + bias for few channels; with
  // `normalize` the instance norm of each output plane, with `relu` then a ReLU: the image-to-image generators' 7x7
  // stem and head and the students' stride-2 convs.
  m.def(
      "small_conv2d(Tensor x, Tensor weight, Tensor? bias, int stride, bool reflect, bool normalize, bool relu, "
      "float eps) -> Tensor");
  // 3x3 transposed conv, stride 2, padding 1, output padding 1 ([H, W] -> [2H, 2W]; weight [C_in, C_out, 3, 3]) + bias
  // for few channels; with `normalize` the instance norm of each output plane, with `relu` then a ReLU: the
  // image-to-image generators' upsampling convs.
  m.def(
      "small_conv_transpose2d(Tensor x, Tensor weight, Tensor? bias, bool normalize, bool relu, float eps) -> Tensor");
  // The ResNet image-to-image generator of anycost/models/i2i (inference): `params` its parameters in module order
  // (each layer's leading channels are used), `widths` one output width per layer (stem, down1, down2, one inner
  // width per residual block, up1, up2), `separable` its blocks' kind, `small_native` for each small_conv2d layer
  // (stem, down1, down2, the dense blocks' convs, head) whether it runs the kernel or pad + ATen conv + norm.
  m.def("i2i_forward(Tensor x, Tensor[] params, int[] widths, bool separable, bool[] small_native) -> Tensor");
  // The StyleGAN2 synthesis network (anycost/models/stylegan2, inference, fp32) of one config in one call: `w` the
  // styles [N, entries, style_dim] (W+, already truncated; at least one entry per layer) or [N, style_dim],
  // `tensors` the generator's by their state-dict `names` (input.input, each conv's and ToRGB's, w_avg, and
  // noises.noise_j: [1 or N, 1, s, s], the noise of conv j; for a conv run int8, its <name>.int8.* tensors:
  // csrc/synthesis_cpu.cpp), `full_widths` the generator's layer widths and
  // `widths` the config's, for output `resolution`. Returns the image [N, 3, resolution, resolution].
  m.def(
      "synthesis(Tensor w, Tensor[] tensors, str[] names, int[] full_widths, int[] widths, int resolution) -> "
      "Tensor");
  // The epilogue of the bf16 styled conv (kernels/cpu/bf16_epilogue.h): from oneDNN's bf16 channels_last conv output
  // (with upsample, the 4 * C sub-pixel phase planes of the stride-2 transposed conv, blurred here), act(v * scale[n,
  // c] + bias[c] + noise * noise_strength), act a leaky ReLU (slope 0.2, no gain), rounded to bf16 channels_last.
  m.def(
      "bf16_epilogue(Tensor x, bool upsample, Tensor? scale, Tensor? bias, Tensor? noise, float noise_strength, "
      "bool activate) -> Tensor");
  // bf16_epilogue of a plain layer (no upsample) and the ToRGB of its output in fp32: (out, or an empty tensor without
  // keep_x; rgb [N, 3, H, W] = rgb_bias + skip + sum_c rgb_weight[n, :, c] * out[n, c]), rgb_weight [N, 3, C] the
  // modulated ToRGB weight, skip the upsampled RGB of the scale before.
  m.def(
      "bf16_epilogue_to_rgb(Tensor x, Tensor? scale, Tensor? bias, Tensor? noise, float noise_strength, "
      "bool activate, Tensor rgb_weight, Tensor rgb_bias, Tensor? skip, bool keep_x) -> (Tensor, Tensor)");
  // Zeros of `size` with like's dtype and device (channels_last: in that memory format), stored in the output cache
  // (csrc/output_cache.h): the buffer that an in-place op of another library (oneDNN's conv + add, anycost/ops/bf16.py)
  // writes the layer's output into, instead of a fresh block each call.
  m.def("cached_zeros(Tensor like, int[] size, bool channels_last) -> Tensor");
  // int8 styled conv (kernels/cpu/qconv_params.h). qconv2d_pack: an int8 weight [C_out, C_in, K, K]
  // (K 1 or 3, values in [-127, 127]) in the kernels' layout [ceil(C_out/8), ceil(C_in/4), K*K, 8, 4],
  // and its sums over the input channels (int32 [C_out, K*K]); once per (layer, width).
  m.def("qconv2d_pack(Tensor weight) -> (Tensor, Tensor)");
  // qconv2d: x * styles rounded to int8 by act_scale, int32 conv (stride 1, same padding; or, with
  // upsample, the stride-2 transposed conv + [1,3,3,1] blur of modulated_conv2d) with the packed
  // weight, then act(out_scale[n, o] * acc + noise * noise_strength + bias[o]) in fp32. act_scale
  // None: each sample's own, max |x * styles| / 127, multiplied into out_scale by the op.
  m.def(
      "qconv2d(Tensor x, Tensor styles, float? act_scale, Tensor packed, Tensor wsum, Tensor out_scale, "
      "bool upsample, Tensor? noise, Tensor? noise_strength, Tensor? bias, bool activate) -> Tensor");
  // A plain int8 styled conv (qconv2d with activate, no upsample) and the ToRGB that reads its output, fused as in
  // styled_conv_to_rgb: returns (the conv's output, or an empty tensor without keep_x; the ToRGB's output).
  m.def(
      "qconv2d_to_rgb(Tensor x, Tensor styles, float? act_scale, Tensor packed, Tensor wsum, Tensor out_scale, "
      "Tensor? noise, Tensor? noise_strength, Tensor? bias, Tensor rgb_weight, Tensor rgb_styles, Tensor rgb_bias, "
      "float rgb_weight_scale, Tensor? skip, bool keep_x) -> (Tensor, Tensor)");
}
