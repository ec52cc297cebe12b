// CPU kernel of anycost::pointwise_conv: argument checks, then the torch-free kernel of
// kernels/cpu/pointwise_conv.h (at the instruction-set level in use). The weight and bias are read through
// their strides (a slice of a wider layer's weight works); x through its batch and channel strides when each
// plane is contiguous (a slice along N or C), else from a contiguous copy. The output is a new contiguous tensor.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "common.h"
#include "i2i_ops.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace anycost {

at::Tensor pointwise_conv_cpu(const at::Tensor& x_in, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                              bool normalize, bool relu, double eps, const std::optional<at::Tensor>& residual) {
  check_float(x_in, "x", 4);
  check_float(weight, "weight", 4);
  const int64_t N = x_in.size(0), C_in = x_in.size(1), H = x_in.size(2), W = x_in.size(3);
  TORCH_CHECK(weight.size(1) == C_in && weight.size(2) == 1 && weight.size(3) == 1,
              "anycost: pointwise weight must be [C_out, ", C_in, ", 1, 1] for ", C_in, " input channels, got ",
              weight.sizes());
  TORCH_CHECK(C_in >= 1 && H >= 1 && W >= 1, "anycost: x must be non-empty, got ", x_in.sizes());
  anycost::cpu::PointwiseConvParams p;
  anycost::set_instance_norm(p, normalize, eps, x_in);
  p.relu = relu;
  const bool planes_contiguous = x_in.stride(3) == 1 && (H == 1 || x_in.stride(2) == W);
  const at::Tensor x = planes_contiguous ? x_in : x_in.contiguous();
  p.N = N, p.C_in = C_in, p.C_out = weight.size(0), p.S = H * W, p.row_len = W;
  p.x = x.data_ptr<float>();
  p.x_sn = x.stride(0), p.x_sc = x.stride(1);
  p.weight = weight.data_ptr<float>();
  p.w_so = weight.stride(0), p.w_si = weight.stride(1);
  anycost::set_bias(p, bias, p.C_out);
  at::Tensor out = anycost::cached_empty({N, p.C_out, H, W}, x.options());
  if (out.numel() == 0) return out;
  anycost::set_residual(p, residual, out.sizes());
  p.out = out.data_ptr<float>();
  p.num_threads = at::get_num_threads();
  anycost::kernels().pointwise_conv(p, anycost::aten_parallel_fn());
  return out;
}

namespace {
at::Tensor pointwise_conv_op(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                             bool normalize, bool relu, double eps) {
  return pointwise_conv_cpu(x, weight, bias, normalize, relu, eps, std::nullopt);
}
}  // namespace

}  // namespace anycost

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("pointwise_conv", &anycost::pointwise_conv_op); }
