// CPU kernel of anycost::small_conv2d: argument checks, then the torch-free kernel of kernels/cpu/small_conv.h (at
// the instruction-set level in use). x, the weight and the bias are read through their strides (a sub-network's
// slices of a wider layer work); the output is a new contiguous tensor.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "common.h"
#include "i2i_ops.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace anycost {

at::Tensor small_conv2d_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            int64_t stride, bool reflect, bool normalize, bool relu, double eps,
                            const std::optional<at::Tensor>& residual) {
  check_float(x, "x", 4);
  check_float(weight, "weight", 4);
  const int64_t N = x.size(0), C_in = x.size(1), H = x.size(2), W = x.size(3), K = weight.size(2);
  TORCH_CHECK(weight.size(1) == C_in && weight.size(3) == K && K % 2 == 1,
              "anycost: small_conv2d: weight must be [C_out, ", C_in, ", K, K] with K odd for ", C_in,
              " input channels, got ", weight.sizes());
  TORCH_CHECK(stride == 1 || stride == 2, "anycost: small_conv2d: stride must be 1 or 2, got ", stride);
  TORCH_CHECK(N >= 1 && C_in >= 1 && H >= 1 && W >= 1 && weight.size(0) >= 1,
              "anycost: x and weight must be non-empty, got ", x.sizes(), " and ", weight.sizes());
  TORCH_CHECK(!reflect || (K / 2 < H && K / 2 < W), "anycost: reflection padding of ", K / 2,
              " needs an image larger than that, got ", x.sizes());
  anycost::cpu::SmallConv2dParams p;
  p.N = N, p.C_in = C_in, p.C_out = weight.size(0), p.H = H, p.W = W;
  p.K = static_cast<int>(K), p.stride = static_cast<int>(stride), p.reflect = reflect;
  TORCH_CHECK(eps >= 0, "anycost: eps must be >= 0, got ", eps);
  TORCH_CHECK(!normalize || p.H_out() * p.W_out() >= 2,
              "anycost: the instance norm needs more than one position per plane, got an output of ", p.H_out(), "x",
              p.W_out());
  p.normalize = normalize, p.eps = static_cast<float>(eps);
  p.relu = relu;
  p.x = x.data_ptr<float>();
  p.x_sn = x.stride(0), p.x_sc = x.stride(1), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  p.weight = weight.data_ptr<float>();
  p.w_so = weight.stride(0), p.w_si = weight.stride(1), p.w_sh = weight.stride(2), p.w_sw = weight.stride(3);
  anycost::set_bias(p, bias, p.C_out);
  at::Tensor out = anycost::cached_empty({N, p.C_out, p.H_out(), p.W_out()}, x.options());
  anycost::set_residual(p, residual, out.sizes());
  p.out = out.data_ptr<float>();
  p.num_threads = at::get_num_threads();
  anycost::kernels().small_conv2d(p, anycost::aten_parallel_fn());
  return out;
}

namespace {
at::Tensor small_conv2d_op(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           int64_t stride, bool reflect, bool normalize, bool relu, double eps) {
  return small_conv2d_cpu(x, weight, bias, stride, reflect, normalize, relu, eps, std::nullopt);
}
}  // namespace

}  // namespace anycost

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("small_conv2d", &anycost::small_conv2d_op); }
