// CPU kernel of anycost::bf16_epilogue: argument checks, then the torch-free kernel of kernels/cpu/bf16_epilogue.h
// (at the instruction-set level in use). x is read through its strides when the channels of each position are
// contiguous (channels_last, as oneDNN returns it), else from a channels_last copy; the output is a new
// channels_last bf16 tensor. bf16_epilogue_to_rgb also sums the ToRGB of that output (plain layers).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "common.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace {

using anycost::check_float;

// The parameters of both ops but the output: x (the conv output, plain or the phase planes when upsampling) and
// the epilogue's terms, checked; `keep` holds the contiguous copies the params point into.
anycost::cpu::Bf16EpilogueParams epilogue_params(const at::Tensor& x_in, bool upsample,
                                                 const std::optional<at::Tensor>& scale,
                                                 const std::optional<at::Tensor>& bias,
                                                 const std::optional<at::Tensor>& noise, double noise_strength,
                                                 bool activate, std::vector<at::Tensor>& keep) {
  keep.reserve(8);
  TORCH_CHECK(x_in.device().is_cpu() && x_in.scalar_type() == at::kBFloat16 && x_in.dim() == 4,
              "anycost: bf16_epilogue: x must be a bf16 [N, C, H, W] CPU tensor, got ", x_in.scalar_type(), " ",
              x_in.sizes());
  const int64_t N = x_in.size(0), Cx = x_in.size(1), Hx = x_in.size(2), Wx = x_in.size(3);
  TORCH_CHECK(N >= 1 && Cx >= 1 && Hx >= 1 && Wx >= 1, "anycost: bf16_epilogue: x must be non-empty, got ",
              x_in.sizes());
  anycost::cpu::Bf16EpilogueParams p;
  p.N = N, p.upsample = upsample;
  if (upsample) {
    TORCH_CHECK(Cx % 4 == 0 && Hx >= 2 && Wx >= 2,
                "anycost: bf16_epilogue: upsample needs the 4 * C phase planes [N, 4 * C, H + 1, W + 1], got ",
                x_in.sizes());
    p.C = Cx / 4, p.H = 2 * (Hx - 1), p.W = 2 * (Wx - 1);
  } else {
    p.C = Cx, p.H = Hx, p.W = Wx;
  }
  const at::Tensor& x = keep.emplace_back(x_in.stride(1) == 1 ? x_in : x_in.contiguous(at::MemoryFormat::ChannelsLast));
  p.x = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  p.x_sn = x.stride(0), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  if (scale.has_value()) {
    check_float(*scale, "scale", 2);
    TORCH_CHECK(scale->size(0) == N && scale->size(1) == p.C, "anycost: bf16_epilogue: scale must be [", N, ", ",
                p.C, "], got ", scale->sizes());
    p.scale = keep.emplace_back(scale->contiguous()).data_ptr<float>();
    p.scale_sn = p.C;
  }
  anycost::set_bias(p, bias, p.C);
  if (noise.has_value()) {
    const at::Tensor& nz = *noise;
    check_float(nz, "noise", 4);
    TORCH_CHECK(nz.size(1) == 1 && (nz.size(0) == 1 || nz.size(0) == N) && nz.size(2) == p.H && nz.size(3) == p.W,
                "anycost: noise must be [1 or ", N, ", 1, ", p.H, ", ", p.W, "], got ", nz.sizes());
    p.noise = nz.data_ptr<float>();
    p.noise_sn = nz.size(0) == 1 ? 0 : nz.stride(0);
    p.noise_sh = nz.stride(2), p.noise_sw = nz.stride(3);
    p.noise_strength = static_cast<float>(noise_strength);
  }
  p.activate = activate;
  return p;
}

// A new channels_last bf16 output of p's shape, set as p's output.
at::Tensor epilogue_output(anycost::cpu::Bf16EpilogueParams& p) {
  at::Tensor out = anycost::cached_empty({p.N, p.C, p.H, p.W}, at::TensorOptions().dtype(at::kBFloat16),
                                         at::MemoryFormat::ChannelsLast);
  p.out = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  p.o_sn = out.stride(0), p.o_sh = out.stride(2), p.o_sw = out.stride(3);
  return out;
}

at::Tensor bf16_epilogue_cpu(const at::Tensor& x, bool upsample, const std::optional<at::Tensor>& scale,
                             const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& noise,
                             double noise_strength, bool activate) {
  std::vector<at::Tensor> keep;
  anycost::cpu::Bf16EpilogueParams p =
      epilogue_params(x, upsample, scale, bias, noise, noise_strength, activate, keep);
  at::Tensor out = epilogue_output(p);
  anycost::kernels().bf16_epilogue(p, anycost::aten_parallel_fn());
  return out;
}

std::tuple<at::Tensor, at::Tensor> bf16_epilogue_to_rgb_cpu(
    const at::Tensor& x, const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& noise, double noise_strength, bool activate, const at::Tensor& rgb_weight,
    const at::Tensor& rgb_bias, const std::optional<at::Tensor>& skip, bool keep_x) {
  std::vector<at::Tensor> keep;
  anycost::cpu::Bf16EpilogueParams p = epilogue_params(x, false, scale, bias, noise, noise_strength, activate, keep);
  constexpr int64_t R = anycost::cpu::kRgbChannels;
  check_float(rgb_weight, "rgb_weight", 3);
  TORCH_CHECK(rgb_weight.size(0) == p.N && rgb_weight.size(1) == R && rgb_weight.size(2) == p.C,
              "anycost: bf16_epilogue_to_rgb: rgb_weight must be [", p.N, ", ", R, ", ", p.C, "], got ",
              rgb_weight.sizes());
  p.rgb_w = keep.emplace_back(rgb_weight.contiguous()).data_ptr<float>();
  check_float(rgb_bias, "rgb_bias", 1);
  TORCH_CHECK(rgb_bias.size(0) == R, "anycost: bf16_epilogue_to_rgb: rgb_bias must be [", R, "], got ",
              rgb_bias.sizes());
  p.rgb_bias = keep.emplace_back(rgb_bias.contiguous()).data_ptr<float>();
  if (skip.has_value()) {
    check_float(*skip, "skip", 4);
    TORCH_CHECK(skip->sizes() == at::IntArrayRef({p.N, R, p.H, p.W}), "anycost: bf16_epilogue_to_rgb: skip must be [",
                p.N, ", ", R, ", ", p.H, ", ", p.W, "], got ", skip->sizes());
    p.rgb_skip = keep.emplace_back(skip->contiguous()).data_ptr<float>();
  }
  at::Tensor out = keep_x ? epilogue_output(p) : x.new_empty({0});
  at::Tensor rgb = anycost::cached_empty({p.N, R, p.H, p.W}, at::TensorOptions().dtype(at::kFloat));
  p.rgb = rgb.data_ptr<float>();
  anycost::kernels().bf16_epilogue(p, anycost::aten_parallel_fn());
  return {out, rgb};
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) {
  m.impl("bf16_epilogue", &bf16_epilogue_cpu);
  m.impl("bf16_epilogue_to_rgb", &bf16_epilogue_to_rgb_cpu);
}
