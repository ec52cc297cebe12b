// CPU kernels of anycost::qconv2d_pack, anycost::qconv2d and anycost::qconv2d_to_rgb (the int8 styled conv),
// argument checks, then the torch-free kernels of kernels/cpu/qconv_blocked.h at the instruction-set level in use
// (kernels/cpu/dispatch.h; the int8 micro-kernel differs per level: avx512_vnni vpdpbusd, avx2 /
// avx512 vpmaddubsw + vpmaddwd, portable scalar). x, styles, out_scale, noise and bias are read
// through their strides; the packed weight and the weight sums must be contiguous (qconv2d_pack's).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <stdexcept>
#include <tuple>

#include "common.h"
#include "cpu/qconv_params.h"

namespace {

namespace cpu = anycost::cpu;
using anycost::check_float;

std::tuple<at::Tensor, at::Tensor> qconv2d_pack_cpu(const at::Tensor& weight) {
  TORCH_CHECK(weight.device().is_cpu() && weight.scalar_type() == at::kChar,
              "anycost: qconv2d_pack needs an int8 CPU weight, got ", weight.scalar_type(), " on ", weight.device());
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == weight.size(3) && (weight.size(2) == 1 || weight.size(2) == 3),
              "anycost: qconv2d_pack needs a [C_out, C_in, K, K] weight with K 1 or 3, got ", weight.sizes());
  TORCH_CHECK(weight.size(0) > 0 && weight.size(1) > 0, "anycost: qconv2d_pack: empty weight ", weight.sizes());
  cpu::QConvPackParams p;
  p.C_out = weight.size(0), p.C_in = weight.size(1), p.K = static_cast<int>(weight.size(2));
  p.weight = weight.data_ptr<int8_t>();
  p.w_so = weight.stride(0), p.w_si = weight.stride(1), p.w_sh = weight.stride(2), p.w_sw = weight.stride(3);
  at::Tensor packed = at::empty(
      {cpu::qconv_out_tiles(p.C_out), cpu::qconv_in_groups(p.C_in), int64_t(p.K) * p.K, cpu::kQPackMR, cpu::kQGroup},
      weight.options());
  at::Tensor wsum = at::empty({p.C_out, int64_t(p.K) * p.K}, weight.options().dtype(at::kInt));
  p.packed = packed.data_ptr<int8_t>();
  p.wsum = wsum.data_ptr<int32_t>();
  try {
    anycost::kernels().qconv.pack(p);
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
  return {packed, wsum};
}

// QConvParams of the checked inputs (the caller sets the epilogue's noise, bias, activation and output).
cpu::QConvParams make_params(const at::Tensor& x, const at::Tensor& styles, std::optional<double> act_scale,
                             const at::Tensor& packed,
                             const at::Tensor& wsum, const at::Tensor& out_scale, bool upsample) {
  check_float(x, "x", 4);
  check_float(styles, "styles", 2);
  check_float(out_scale, "out_scale", 2);
  const int64_t n = x.size(0), c_in = x.size(1);
  TORCH_CHECK(n > 0 && c_in > 0 && x.size(2) > 0 && x.size(3) > 0, "anycost: qconv2d: empty x ", x.sizes());
  TORCH_CHECK(wsum.device().is_cpu() && wsum.scalar_type() == at::kInt && wsum.dim() == 2 && wsum.is_contiguous(),
              "anycost: wsum must be qconv2d_pack's contiguous int32 [C_out, K*K] CPU tensor, got ", wsum.sizes());
  const int64_t c_out = wsum.size(0);
  TORCH_CHECK(packed.device().is_cpu() && packed.scalar_type() == at::kChar && packed.is_contiguous() &&
                  packed.dim() == 5 && packed.size(0) == cpu::qconv_out_tiles(c_out) &&
                  packed.size(1) == cpu::qconv_in_groups(c_in) && (packed.size(2) == 1 || packed.size(2) == 9) &&
                  packed.size(3) == cpu::kQPackMR && packed.size(4) == cpu::kQGroup,
              "anycost: packed must be qconv2d_pack's contiguous int8 [ceil(C_out/8), ceil(C_in/4), K*K, 8, 4] "
              "for C_out=", c_out, " (wsum) and C_in=", c_in, " (x), got ", packed.sizes());
  TORCH_CHECK(wsum.size(1) == packed.size(2), "anycost: wsum must be [", c_out, ", ", packed.size(2), "], got ",
              wsum.sizes());
  TORCH_CHECK(!upsample || packed.size(2) == 9, "anycost: upsample needs a 3x3 weight");
  TORCH_CHECK(styles.size(0) == n && styles.size(1) == c_in, "anycost: styles must be [", n, ", ", c_in, "], got ",
              styles.sizes());
  TORCH_CHECK(out_scale.size(0) == n && out_scale.size(1) == c_out, "anycost: out_scale must be [", n, ", ", c_out,
              "], got ", out_scale.sizes());
  cpu::QConvParams p;
  p.N = n, p.C_in = c_in, p.C_out = c_out, p.H = x.size(2), p.W = x.size(3);
  p.K = packed.size(2) == 9 ? 3 : 1;
  p.upsample = upsample;
  p.x = x.data_ptr<float>();
  p.x_sn = x.stride(0), p.x_sc = x.stride(1), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  p.styles = styles.data_ptr<float>();
  p.s_sn = styles.stride(0), p.s_sc = styles.stride(1);
  p.dynamic_scale = !act_scale.has_value();
  p.act_scale = static_cast<float>(act_scale.value_or(1.0));
  p.packed = packed.data_ptr<int8_t>();
  p.wsum = wsum.data_ptr<int32_t>();
  p.out_scale = out_scale.data_ptr<float>();
  p.os_sn = out_scale.stride(0), p.os_sc = out_scale.stride(1);
  return p;
}

// Runs p; the output is [N, C_out, H_out, W_out], or empty (and not written) with keep_out false.
at::Tensor run(cpu::QConvParams& p, const at::Tensor& x, bool keep_out = true) {
  at::Tensor out = keep_out ? anycost::cached_empty({p.N, p.C_out, p.H_out(), p.W_out()}, x.options())
                            : at::empty({0}, x.options());
  if (keep_out) {
    p.out = out.data_ptr<float>();
    p.o_sn = out.stride(0), p.o_sc = out.stride(1), p.o_sh = out.stride(2), p.o_sw = out.stride(3);
  }
  cpu::QConvBlocking blocking;
  blocking.num_threads = at::get_num_threads();
  try {
    anycost::kernels().qconv.conv2d(p, blocking, anycost::aten_parallel_fn());
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
  return out;
}

at::Tensor qconv2d_cpu(const at::Tensor& x, const at::Tensor& styles, std::optional<double> act_scale,
                       const at::Tensor& packed,
                       const at::Tensor& wsum, const at::Tensor& out_scale, bool upsample,
                       const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_strength,
                       const std::optional<at::Tensor>& bias, bool activate) {
  cpu::QConvParams p = make_params(x, styles, act_scale, packed, wsum, out_scale, upsample);
  anycost::set_epilogue(p, noise, noise_strength, bias, activate);
  return run(p, x);
}

std::tuple<at::Tensor, at::Tensor> qconv2d_to_rgb_cpu(
    const at::Tensor& x, const at::Tensor& styles, std::optional<double> act_scale, const at::Tensor& packed,
    const at::Tensor& wsum, const at::Tensor& out_scale, const std::optional<at::Tensor>& noise,
    const std::optional<at::Tensor>& noise_strength, const std::optional<at::Tensor>& bias,
    const at::Tensor& rgb_weight, const at::Tensor& rgb_styles, const at::Tensor& rgb_bias, double rgb_weight_scale,
    const std::optional<at::Tensor>& skip, bool keep_x) {
  cpu::QConvParams p = make_params(x, styles, act_scale, packed, wsum, out_scale, false);
  anycost::set_epilogue(p, noise, noise_strength, bias, true);
  const anycost::RgbHeadTensors head =
      anycost::set_rgb_head(p.rgb, p.N, p.C_out, x, rgb_weight, rgb_styles, rgb_bias, rgb_weight_scale, skip);
  at::Tensor out = run(p, x, keep_x);
  return {out, head.out};
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) {
  m.impl("qconv2d_pack", &qconv2d_pack_cpu);
  m.impl("qconv2d", &qconv2d_cpu);
  m.impl("qconv2d_to_rgb", &qconv2d_to_rgb_cpu);
}
