// CPU kernel of anycost::i2i_forward: the whole ResNet image-to-image generator of anycost/models/i2i at inference,
// one sub-network of it, in one call. Each layer is the same call the Python module makes (the native ops' CPU
// wrappers, or for a small_conv2d layer whose kernel does not pay, the reference's pad + ATen conv + instance norm),
// made from C++: at 32 px the student's layers take 5-20 us each, and going through Python and the dispatcher for
// each of them cost as much again.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cstddef>
#include <optional>

#include "i2i_ops.h"

namespace anycost {
namespace {

constexpr double kEps = 1e-5;  // the instance norms' (anycost.models.i2i.layers)
constexpr int64_t kHeadLayers = 3, kTailLayers = 2;  // stem, down1, down2 / up1, up2 in `widths`

// Reads the generator's parameters in its module order, each cut to the leading channels a layer uses (its first
// one or two dims; the wrappers check the rest of its shape).
class Params {
 public:
  explicit Params(at::TensorList all) : all_(all) {}

  at::Tensor next(int64_t dim0, int64_t dim1 = -1) {
    TORCH_CHECK(i_ < all_.size(), "anycost: i2i_forward: params has ", all_.size(), " tensors, the layers need more");
    at::Tensor t = all_[i_++];
    return narrow(narrow(t, 0, dim0), 1, dim1);
  }

  void check_used() const {
    TORCH_CHECK(i_ == all_.size(), "anycost: i2i_forward: params has ", all_.size(), " tensors, the layers use ", i_);
  }

 private:
  at::Tensor narrow(const at::Tensor& t, int64_t dim, int64_t n) const {
    if (n < 0) return t;
    TORCH_CHECK(t.dim() > dim && n <= t.size(dim), "anycost: i2i_forward: parameter ", i_ - 1, " has shape ",
                t.sizes(), ", its layer needs ", n, " along dim ", dim);
    return n == t.size(dim) ? t : t.narrow(dim, 0, n);
  }

  at::TensorList all_;
  size_t i_ = 0;
};

// `residual`: the residual block's skip, added last.
at::Tensor small_conv(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t stride, bool reflect,
                      bool normalize, bool relu, bool native, const std::optional<at::Tensor>& residual) {
  if (native) return small_conv2d_cpu(x, w, b, stride, reflect, normalize, relu, kEps, residual);
  const int64_t pad = w.size(2) / 2;  // anycost.ops.ref.small_conv2d
  at::Tensor out = reflect ? at::conv2d(at::reflection_pad2d(x, {pad, pad, pad, pad}), w, b, stride)
                           : at::conv2d(x, w, b, stride, pad);
  if (normalize) out = at::instance_norm(out, {}, {}, {}, {}, true, 0.0, kEps, false);
  if (relu) out.relu_();
  return residual ? out.add_(*residual) : out;
}

at::Tensor i2i_forward_cpu(const at::Tensor& x, at::TensorList params, at::IntArrayRef widths, bool separable,
                           c10::List<bool> small_native) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4,
              "anycost: i2i_forward: x must be a float32 CPU tensor [N, C, H, W], got ", x.sizes());
  const int64_t n_layers = static_cast<int64_t>(widths.size()), n_blocks = n_layers - kHeadLayers - kTailLayers;
  TORCH_CHECK(n_blocks >= 1, "anycost: i2i_forward: widths needs stem, down1, down2, a block, up1, up2; got ",
              widths);
  const size_t n_small = 4 + (separable ? 0 : 2 * n_blocks);  // stem, down1, down2, [block convs], head
  TORCH_CHECK(small_native.size() == n_small, "anycost: i2i_forward: small_native needs ", n_small, " entries, got ",
              small_native.size());
  Params p(params);
  size_t s = 0;  // the next small_conv2d layer
  auto conv = [&](const at::Tensor& h, int64_t c_out, int64_t stride, bool reflect, bool normalize, bool relu,
                  const std::optional<at::Tensor>& residual = std::nullopt) {
    at::Tensor w = p.next(c_out, h.size(1));
    at::Tensor b = p.next(c_out);
    return small_conv(h, w, b, stride, reflect, normalize, relu, small_native.get(s++), residual);
  };
  // A separable conv to c_out channels: depthwise 3x3 + instance norm, then 1x1 + instance norm (+ ReLU) (+ the
  // residual).
  auto separable_conv = [&](const at::Tensor& h, int64_t c_out, bool relu,
                            const std::optional<at::Tensor>& residual = std::nullopt) {
    const int64_t c = h.size(1);
    at::Tensor dw_w = p.next(c), dw_b = p.next(c);
    at::Tensor d = depthwise_conv3x3_cpu(h, dw_w, dw_b, true, true, kEps);
    at::Tensor pw_w = p.next(c_out, c), pw_b = p.next(c_out);
    return pointwise_conv_cpu(d, pw_w, pw_b, true, relu, kEps, residual);
  };

  at::Tensor h = conv(x, widths[0], 1, true, true, true);
  for (int64_t i = 1; i < kHeadLayers; ++i) h = conv(h, widths[i], 2, false, true, true);
  for (int64_t k = 0; k < n_blocks; ++k) {
    const int64_t trunk = h.size(1), inner = widths[kHeadLayers + k];
    h = separable ? separable_conv(separable_conv(h, inner, true), trunk, false, h)
                  : conv(conv(h, inner, 1, true, true, true), trunk, 1, true, true, false, h);
  }
  for (int64_t i = n_layers - kTailLayers; i < n_layers; ++i) {
    at::Tensor w = p.next(h.size(1), widths[i]);  // torch's transposed layout: input channels first
    at::Tensor b = p.next(widths[i]);
    h = small_conv_transpose2d_cpu(h, w, b, true, true, kEps);
  }
  const int64_t out_channels = params.empty() ? 0 : params.back().size(0);
  h = conv(h, out_channels, 1, true, false, false).tanh_();
  p.check_used();
  return h;
}

}  // namespace
}  // namespace anycost

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("i2i_forward", &anycost::i2i_forward_cpu); }
