// Shared glue of the torch CPU wrappers (csrc/<op>_cpu.cpp): argument checks, the kernels of the
// instruction-set level in use, and the at::parallel_for the torch-free kernels run on.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <optional>
#include <stdexcept>

#include "cpu/dispatch.h"

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

}  // namespace anycost
