// CPU kernels of anycost::modulated_conv2d, anycost::to_rgb and anycost::styled_conv_to_rgb: argument checks,
// then the torch-free blocked kernel of kernels/cpu/modulated_conv_blocked.h, at the instruction-set level in use
// (kernels/cpu/dispatch.h), on the tensors' raw pointers and strides (sliced weight views are read in place, never
// copied).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common.h"
#include "output_cache.h"
#include "weight_identity.h"
#include "cpu/modconv_params.h"

namespace {

namespace cpu = anycost::cpu;

using anycost::check_float;
using anycost::check_skip;
using anycost::WeightIdentity;
using anycost::weight_identity;

cpu::ModConvParams make_params(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& styles,
                               double weight_scale, bool demodulate, bool upsample) {
  check_float(x, "x", 4);
  check_float(weight, "weight", 4);
  check_float(styles, "styles", 2);
  const int64_t n = x.size(0), c_in = x.size(1);
  TORCH_CHECK(n > 0, "anycost: x has an empty batch");
  TORCH_CHECK(weight.size(1) == c_in, "anycost: weight has ", weight.size(1), " input channels, x has ", c_in);
  TORCH_CHECK(weight.size(2) == weight.size(3) && (weight.size(2) == 1 || weight.size(2) == 3),
              "anycost: weight must be 1x1 or 3x3, got ", weight.sizes());
  TORCH_CHECK(!upsample || weight.size(2) == 3, "anycost: upsample needs a 3x3 weight");
  TORCH_CHECK(styles.size(0) == n && styles.size(1) == c_in, "anycost: styles must be [", n, ", ", c_in,
              "], got ", styles.sizes());
  cpu::ModConvParams p;
  p.N = n;
  p.C_in = c_in;
  p.C_out = weight.size(0);
  p.H = x.size(2);
  p.W = x.size(3);
  p.K = static_cast<int>(weight.size(2));
  p.demodulate = demodulate;
  p.upsample = upsample;
  p.weight_scale = static_cast<float>(weight_scale);
  p.x = x.data_ptr<float>();
  p.x_sn = x.stride(0), p.x_sc = x.stride(1), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  p.weight = weight.data_ptr<float>();
  p.w_so = weight.stride(0), p.w_si = weight.stride(1), p.w_sh = weight.stride(2), p.w_sw = weight.stride(3);
  const WeightIdentity wid = weight_identity(weight);
  p.weight_id = wid.id, p.weight_version = wid.version;
  p.styles = styles.data_ptr<float>();
  p.s_sn = styles.stride(0), p.s_sc = styles.stride(1);
  return p;
}

// Runs p; the output is [N, C_out, H_out, W_out], or empty (and not written) with keep_out false.
at::Tensor run(cpu::ModConvParams& p, const at::Tensor& x, bool keep_out = true) {
  at::Tensor out = keep_out ? anycost::cached_empty({p.N, p.C_out, p.H_out(), p.W_out()}, x.options())
                            : at::empty({0}, x.options());
  if (keep_out) {
    p.out = out.data_ptr<float>();
    p.o_sn = out.stride(0), p.o_sc = out.stride(1), p.o_sh = out.stride(2), p.o_sw = out.stride(3);
  }
  const cpu::KernelTable& k = anycost::kernels();
  cpu::ModConvBlocking blocking = cpu::machine_modconv_blocking();
  blocking.num_threads = at::get_num_threads();
  k.modulated_conv2d(p, blocking, anycost::aten_parallel_fn());
  return out;
}

at::Tensor modulated_conv2d_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& styles,
                                double weight_scale, bool demodulate, bool upsample,
                                const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_strength,
                                const std::optional<at::Tensor>& bias, bool activate) {
  cpu::ModConvParams p = make_params(x, weight, styles, weight_scale, demodulate, upsample);
  anycost::set_epilogue(p, noise, noise_strength, bias, activate);
  return run(p, x);
}

at::Tensor to_rgb_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& styles, const at::Tensor& bias,
                      double weight_scale, const std::optional<at::Tensor>& skip) {
  cpu::ModConvParams p = make_params(x, weight, styles, weight_scale, false, false);
  TORCH_CHECK(p.K == 1, "anycost: to_rgb needs a 1x1 weight, got ", weight.sizes());
  check_float(bias, "bias", 1);
  TORCH_CHECK(bias.size(0) == p.C_out, "anycost: bias must be [", p.C_out, "], got ", bias.sizes());
  p.bias = bias.data_ptr<float>();
  p.bias_s = bias.stride(0);
  if (skip.has_value()) {
    const at::Tensor& s = *skip;
    check_skip(s, p.N, p.C_out, x);
    p.skip = s.data_ptr<float>();
    p.skip_sn = s.stride(0), p.skip_sc = s.stride(1), p.skip_sh = s.stride(2), p.skip_sw = s.stride(3);
  }
  return run(p, x);
}

std::tuple<at::Tensor, at::Tensor> styled_conv_to_rgb_cpu(
    const at::Tensor& x, const at::Tensor& weight, const at::Tensor& styles, double weight_scale,
    const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_strength,
    const std::optional<at::Tensor>& bias, const at::Tensor& rgb_weight, const at::Tensor& rgb_styles,
    const at::Tensor& rgb_bias, double rgb_weight_scale, const std::optional<at::Tensor>& skip, bool keep_x) {
  cpu::ModConvParams p = make_params(x, weight, styles, weight_scale, true, false);
  anycost::set_epilogue(p, noise, noise_strength, bias, true);
  const anycost::RgbHeadTensors head =
      anycost::set_rgb_head(p.rgb, p.N, p.C_out, x, rgb_weight, rgb_styles, rgb_bias, rgb_weight_scale, skip);
  at::Tensor out = run(p, x, keep_x);
  return {out, head.out};
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) {
  m.impl("modulated_conv2d", &modulated_conv2d_cpu);
  m.impl("to_rgb", &to_rgb_cpu);
  m.impl("styled_conv_to_rgb", &styled_conv_to_rgb_cpu);
}
