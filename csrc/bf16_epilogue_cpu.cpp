// CPU kernel of anycost::bf16_epilogue: argument checks, then the torch-free kernel of kernels/cpu/bf16_epilogue.h
// (at the instruction-set level in use). x is read through its strides when the channels of each position are
// contiguous (channels_last, as oneDNN returns it), else from a channels_last copy; the output is a new
// channels_last bf16 tensor.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "common.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace {

using anycost::check_float;

at::Tensor bf16_epilogue_cpu(const at::Tensor& x_in, bool upsample, const std::optional<at::Tensor>& scale,
                             const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& noise,
                             double noise_strength, bool activate) {
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
  const at::Tensor x = x_in.stride(1) == 1 ? x_in : x_in.contiguous(at::MemoryFormat::ChannelsLast);
  p.x = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  p.x_sn = x.stride(0), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  std::optional<at::Tensor> scale_c;
  if (scale.has_value()) {
    check_float(*scale, "scale", 2);
    TORCH_CHECK(scale->size(0) == N && scale->size(1) == p.C, "anycost: bf16_epilogue: scale must be [", N, ", ",
                p.C, "], got ", scale->sizes());
    scale_c = scale->contiguous();
    p.scale = scale_c->data_ptr<float>();
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
  at::Tensor out = anycost::cached_empty({N, p.C, p.H, p.W}, x.options(), at::MemoryFormat::ChannelsLast);
  p.out = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  p.o_sn = out.stride(0), p.o_sh = out.stride(2), p.o_sw = out.stride(3);
  anycost::kernels().bf16_epilogue(p, anycost::aten_parallel_fn());
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("bf16_epilogue", &bf16_epilogue_cpu); }
