// The CPU wrappers of the image-to-image ops (csrc/<op>_cpu.cpp), declared for the whole-generator forward
// (csrc/i2i_forward_cpu.cpp), which calls them directly rather than through the dispatcher.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace anycost {

at::Tensor depthwise_conv3x3_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                 bool reflect, bool normalize, double eps);
// `residual` (optional, a float32 contiguous tensor of the output's shape) is added to the output last: the
// residual block's skip, fused (the ops registered with torch pass none).
at::Tensor pointwise_conv_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                              bool normalize, bool relu, double eps, const std::optional<at::Tensor>& residual);
at::Tensor small_conv2d_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            int64_t stride, bool reflect, bool normalize, bool relu, double eps,
                            const std::optional<at::Tensor>& residual);
at::Tensor small_conv_transpose2d_cpu(const at::Tensor& x, const at::Tensor& weight,
                                      const std::optional<at::Tensor>& bias, bool normalize, bool relu, double eps);

}  // namespace anycost
