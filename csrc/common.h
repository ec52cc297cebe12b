// Shared glue of the torch CPU wrappers (csrc/<op>_cpu.cpp): argument checks, the kernels of the
// instruction-set level in use, and the at::parallel_for the torch-free kernels run on.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <optional>
#include <stdexcept>

#include "cpu/dispatch.h"
#include "output_cache.h"

namespace anycost {

// A float32 CPU tensor (any strides); `dim` >= 0 also checks the rank.
inline void check_float(const at::Tensor& t, const char* name, int64_t dim = -1) {
  TORCH_CHECK(t.device().is_cpu(), "anycost: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, "anycost: ", name, " must be float32, got ", t.scalar_type());
  TORCH_CHECK(dim < 0 || t.dim() == dim, "anycost: ", name, " must have ", dim, " dims, got ", t.sizes());
}

// The kernel table of the level in use (kernels/cpu/dispatch.h); a bad ANYCOST_CPU_CAPABILITY
// becomes a RuntimeError naming the level and the CPU's levels.
inline const cpu::KernelTable& kernels() {
  try {
    return cpu::active_kernels();
  } catch (const std::runtime_error& e) {
    TORCH_CHECK(false, e.what());
  }
}

// at::parallel_for behind the kernels' type-erased ParallelFn.
inline cpu::ParallelFn aten_parallel_fn() {
  cpu::ParallelFn fn;
  fn.run = [](void*, int64_t begin, int64_t end, int64_t grain, cpu::ParallelFn::Body body, void* body_ctx) {
    at::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) { body(body_ctx, b, e); });
  };
  return fn;
}

// An optional per-channel bias [channels] (any stride), checked and set on p.bias / p.bias_s (every Params struct of
// the kernels names them so).
template <class Params>
void set_bias(Params& p, const std::optional<at::Tensor>& bias, int64_t channels) {
  if (!bias.has_value()) return;
  check_float(*bias, "bias", 1);
  TORCH_CHECK(bias->size(0) == channels, "anycost: bias must be [", channels, "], got ", bias->sizes());
  p.bias = bias->data_ptr<float>();
  p.bias_s = bias->stride(0);
}

// The fused instance norm of the image-to-image ops (depthwise_conv3x3, pointwise_conv): eps checked, a norm of a
// plane of one position refused (its variance is undefined, as torch's instance_norm says), set on p.normalize /
// p.eps. `x` is the op's [N, C, H, W] input, whose planes the output's have the size of.
template <class Params>
void set_instance_norm(Params& p, bool normalize, double eps, const at::Tensor& x) {
  TORCH_CHECK(eps >= 0, "anycost: eps must be >= 0, got ", eps);
  TORCH_CHECK(!normalize || x.size(2) * x.size(3) >= 2,
              "anycost: the instance norm needs more than one position per plane, got ", x.sizes());
  p.normalize = normalize;
  p.eps = static_cast<float>(eps);
}

// An optional residual added to an image-to-image op's output last (a float32 contiguous tensor of the output's
// sizes), checked and set on p.residual.
template <class Params>
void set_residual(Params& p, const std::optional<at::Tensor>& residual, at::IntArrayRef out_sizes) {
  if (!residual.has_value()) return;
  TORCH_CHECK(residual->device().is_cpu() && residual->scalar_type() == at::kFloat && residual->is_contiguous() &&
                  residual->sizes() == out_sizes,
              "anycost: residual must be a contiguous float32 CPU tensor of the output's sizes ", out_sizes, ", got ",
              residual->sizes());
  p.residual = residual->data_ptr<float>();
}

// The epilogue arguments both styled convs take (fp32 ModConvParams, int8 QConvParams: the same field names),
// checked and set on `p`: optional noise [1 or N, 1, H_out, W_out] with its one-element strength, optional bias
// [C_out], and the leaky ReLU when `activate`.
template <class Params>
void set_epilogue(Params& p, const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_strength,
                  const std::optional<at::Tensor>& bias, bool activate) {
  if (noise.has_value()) {
    const at::Tensor& nz = *noise;
    check_float(nz, "noise", 4);
    TORCH_CHECK(noise_strength.has_value() && noise_strength->numel() == 1,
                "anycost: noise needs a one-element noise_strength");
    TORCH_CHECK(nz.size(1) == 1 && (nz.size(0) == 1 || nz.size(0) == p.N) && nz.size(2) == p.H_out() &&
                    nz.size(3) == p.W_out(),
                "anycost: noise must be [1 or ", p.N, ", 1, ", p.H_out(), ", ", p.W_out(), "], got ", nz.sizes());
    p.noise = nz.data_ptr<float>();
    p.noise_sn = nz.size(0) == 1 ? 0 : nz.stride(0);
    p.noise_sh = nz.stride(2), p.noise_sw = nz.stride(3);
    p.noise_strength = noise_strength->item<float>();
  }
  set_bias(p, bias, p.C_out);
  p.act = activate ? cpu::Activation::LRelu : cpu::Activation::Linear;
}

// A skip image [n, c, H/2, W/2] (float32, any strides) for x of size [., ., H, W] (even H and W).
inline void check_skip(const at::Tensor& s, int64_t n, int64_t c, const at::Tensor& x) {
  check_float(s, "skip", 4);
  TORCH_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0 && s.size(0) == n && s.size(1) == c &&
                  s.size(2) * 2 == x.size(2) && s.size(3) * 2 == x.size(3),
              "anycost: skip must be [", n, ", ", c, ", H/2, W/2] for x of size ", x.sizes(), ", got ", s.sizes());
}

// The tensors an RGB head reads and writes (its weight and bias as the kernel reads them, its output), kept
// alive by the caller for the call.
struct RgbHeadTensors {
  at::Tensor w, bias, out;
};

// The ToRGB head of a plain styled conv of either kind (cpu::RgbHead: fp32 ModConvParams, int8 QConvParams), checked
// and set on `h` for `n` samples of `c_out` channels at x's size: the per-sample weight [n, 3, c_out] (the ToRGB
// weight [3, c_out, 1, 1] x its scale x rgb_styles [n, c_out]), the bias [3], the optional skip [n, 3, H/2, W/2]
// and the output [n, 3, H, W] (from the output cache, returned).
inline RgbHeadTensors set_rgb_head(cpu::RgbHead& h, int64_t n, int64_t c_out, const at::Tensor& x,
                                   const at::Tensor& rgb_weight, const at::Tensor& rgb_styles,
                                   const at::Tensor& rgb_bias, double rgb_weight_scale,
                                   const std::optional<at::Tensor>& skip) {
  check_float(rgb_weight, "rgb_weight", 4);
  check_float(rgb_styles, "rgb_styles", 2);
  check_float(rgb_bias, "rgb_bias", 1);
  TORCH_CHECK(rgb_weight.size(0) == cpu::kRgbChannels && rgb_weight.size(1) == c_out && rgb_weight.size(2) == 1 &&
                  rgb_weight.size(3) == 1,
              "anycost: rgb_weight must be [3, ", c_out, ", 1, 1], got ", rgb_weight.sizes());
  TORCH_CHECK(rgb_styles.size(0) == n && rgb_styles.size(1) == c_out, "anycost: rgb_styles must be [", n, ", ",
              c_out, "], got ", rgb_styles.sizes());
  TORCH_CHECK(rgb_bias.size(0) == cpu::kRgbChannels, "anycost: rgb_bias must be [3], got ", rgb_bias.sizes());
  RgbHeadTensors t;
  t.w = (rgb_weight.reshape({1, cpu::kRgbChannels, c_out}) * rgb_styles.unsqueeze(1) * rgb_weight_scale).contiguous();
  t.bias = rgb_bias.contiguous();
  t.out = cached_empty({n, cpu::kRgbChannels, x.size(2), x.size(3)}, x.options());
  h.w = t.w.data_ptr<float>();
  h.bias = t.bias.data_ptr<float>();
  h.out = t.out.data_ptr<float>();
  if (skip.has_value()) {
    const at::Tensor& s = *skip;
    check_skip(s, n, cpu::kRgbChannels, x);
    h.skip = s.data_ptr<float>();
    h.skip_sn = s.stride(0), h.skip_sc = s.stride(1), h.skip_sh = s.stride(2), h.skip_sw = s.stride(3);
  }
  return t;
}

}  // namespace anycost
