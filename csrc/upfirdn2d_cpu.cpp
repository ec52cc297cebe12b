// CPU kernel of anycost::upfirdn2d: argument checks, then the torch-free FIR kernel of
// kernels/cpu/upfirdn2d_blocked.h (at the instruction-set level in use) on the tensors' raw
// pointers and strides (x and the kernel may be any strided views: nothing is copied; the output
// is a new contiguous tensor).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common.h"
#include "output_cache.h"
#include "cpu/op_params.h"

namespace {

namespace cpu = anycost::cpu;
using anycost::check_float;

// Same semantics as anycost/ops/ref.py::upfirdn2d with pad = (x0, x1, y0, y1) (negative crops).
at::Tensor upfirdn2d_cpu(const at::Tensor& x, const at::Tensor& kernel, int64_t up, int64_t down,
                         at::IntArrayRef pad) {
  check_float(x, "x", 4);
  check_float(kernel, "kernel", 2);
  TORCH_CHECK(pad.size() == 4, "anycost: pad must be (x0, x1, y0, y1), got ", pad);
  TORCH_CHECK(up >= 1 && down >= 1, "anycost: up and down must be >= 1, got up=", up, ", down=", down);
  TORCH_CHECK(x.size(0) > 0, "anycost: x has an empty batch");
  TORCH_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, "anycost: x must be non-empty, got ", x.sizes());
  TORCH_CHECK(kernel.size(0) > 0 && kernel.size(1) > 0, "anycost: kernel must be non-empty, got ", kernel.sizes());
  cpu::UpFirDn2dParams p;
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.kh = kernel.size(0), p.kw = kernel.size(1);
  p.up_x = p.up_y = static_cast<int>(up);
  p.down_x = p.down_y = static_cast<int>(down);
  p.pad_x0 = pad[0], p.pad_x1 = pad[1], p.pad_y0 = pad[2], p.pad_y1 = pad[3];
  const int64_t padded_h = p.H * up + p.pad_y0 + p.pad_y1, padded_w = p.W * up + p.pad_x0 + p.pad_x1;
  TORCH_CHECK(padded_h >= p.kh && padded_w >= p.kw, "anycost: the upsampled, padded input (", padded_h, " x ",
              padded_w, ") is smaller than the kernel (", p.kh, " x ", p.kw, "): the output would be empty");
  p.x = x.data_ptr<float>();
  p.x_sn = x.stride(0), p.x_sc = x.stride(1), p.x_sh = x.stride(2), p.x_sw = x.stride(3);
  p.kernel = kernel.data_ptr<float>();
  p.k_sh = kernel.stride(0), p.k_sw = kernel.stride(1);
  at::Tensor out = anycost::cached_empty({p.N, p.C, p.H_out(), p.W_out()}, x.options());
  p.out = out.data_ptr<float>();
  p.o_sn = out.stride(0), p.o_sc = out.stride(1), p.o_sh = out.stride(2), p.o_sw = out.stride(3);
  anycost::kernels().upfirdn2d(p, anycost::aten_parallel_fn());
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("upfirdn2d", &upfirdn2d_cpu); }
