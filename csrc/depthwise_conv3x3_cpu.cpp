// CPU kernel of anycost::depthwise_conv3x3: argument checks, then the torch-free kernel of
// kernels/cpu/depthwise_conv3x3.h (at the instruction-set level in use). x, weight and bias are read
// through their strides (any slice of a wider layer's weight works); the output is a new contiguous tensor.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "common.h"
#include "i2i_ops.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace anycost {

at::Tensor depthwise_conv3x3_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                 bool reflect, bool normalize, double eps) {
  check_float(x, "x", 4);
  check_float(weight, "weight", 4);
  anycost::cpu::DepthwiseConv3x3Params p;
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  TORCH_CHECK(weight.size(0) == p.C && weight.size(1) == 1 && weight.size(2) == 3 && weight.size(3) == 3,
              "anycost: depthwise weight must be [", p.C, ", 1, 3, 3] for ", p.C, " channels, got ", weight.sizes());
  TORCH_CHECK(p.H >= 1 && p.W >= 1, "anycost: x must have a non-empty image, got ", x.sizes());
  TORCH_CHECK(!reflect || (p.H >= 2 && p.W >= 2), "anycost: reflection padding needs an image of at least 2x2, got ",
              x.sizes());
  anycost::set_instance_norm(p, normalize, eps, x);
  p.reflect = reflect;
  p.x = x.data_ptr<float>();
  p.x_sn = x.stride(0), p.x_sc = x.stride(1), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  p.weight = weight.data_ptr<float>();
  p.w_sc = weight.stride(0), p.w_sh = weight.stride(2), p.w_sw = weight.stride(3);
  anycost::set_bias(p, bias, p.C);
  at::Tensor out = anycost::cached_empty({p.N, p.C, p.H, p.W}, x.options());
  if (out.numel() == 0) return out;
  p.out = out.data_ptr<float>();
  p.num_threads = at::get_num_threads();
  anycost::kernels().depthwise_conv3x3(p, anycost::aten_parallel_fn());
  return out;
}

}  // namespace anycost

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("depthwise_conv3x3", &anycost::depthwise_conv3x3_cpu); }
