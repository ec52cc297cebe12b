// CPU kernel of anycost::bias_act: argument checks, then the torch-free kernel of
// kernels/cpu/bias_act_blocked.h (at the instruction-set level in use). x is read as [N, C, S]
// (S = the flattened dims after the channels): through its own strides when those dims flatten to one stride (any contiguous or channels-last
// tensor, any slice along N or C), else from a contiguous copy (x.reshape copies only then). The bias
// may be a strided view. The output is a new contiguous tensor of x's shape.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <string>

#include "common.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace {

namespace cpu = anycost::cpu;
using anycost::check_float;

// Same semantics as anycost/ops/ref.py::bias_act: bias on dim 1, act 'linear' | 'lrelu' (slope alpha),
// times gain; gain None means 1 for 'linear' and sqrt(2) for 'lrelu'.
at::Tensor bias_act_cpu(const at::Tensor& x, const std::optional<at::Tensor>& bias, c10::string_view act,
                        double alpha, std::optional<double> gain) {
  check_float(x, "x");
  const bool lrelu = act == "lrelu";
  TORCH_CHECK(lrelu || act == "linear", "anycost: unknown activation '", std::string(act),
              "': use 'linear' or 'lrelu'");
  cpu::BiasActParams p;
  if (x.dim() >= 2) {
    p.N = x.size(0), p.C = x.size(1);
    p.S = 1;
    for (int64_t d = 2; d < x.dim(); ++d) p.S *= x.size(d);
  } else {
    p.S = x.numel();  // a scalar or a vector: one plane
  }
  if (bias.has_value()) {
    check_float(*bias, "bias", 1);
    TORCH_CHECK(x.dim() >= 2, "anycost: a bias needs x with a channel dim (>= 2 dims), got ", x.sizes());
    TORCH_CHECK(bias->size(0) == p.C, "anycost: bias has ", bias->size(0), " channels, x has ", p.C);
    p.bias = bias->data_ptr<float>();
    p.bias_s = bias->stride(0);
  }
  at::Tensor out = anycost::cached_empty(x.sizes(), x.options());
  if (out.numel() == 0) return out;
  const at::Tensor x3 = x.reshape({p.N, p.C, p.S});  // a view unless the trailing dims cannot flatten
  p.x = x3.data_ptr<float>();
  p.x_sn = x3.stride(0), p.x_sc = x3.stride(1), p.x_ss = x3.stride(2);
  p.out = out.data_ptr<float>();
  p.o_sn = p.C * p.S, p.o_sc = p.S, p.o_ss = 1;
  p.act = lrelu ? cpu::Activation::LRelu : cpu::Activation::Linear;
  p.alpha = static_cast<float>(alpha);
  p.gain = static_cast<float>(gain.has_value() ? *gain : (lrelu ? std::sqrt(2.0) : 1.0));
  anycost::kernels().bias_act(p, anycost::aten_parallel_fn());
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("bias_act", &bias_act_cpu); }
