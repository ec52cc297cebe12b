// Shared glue of the torch CPU wrappers (csrc/<op>_cpu.cpp): argument checks, the kernels of the
// instruction-set level in use, and the at::parallel_for the torch-free kernels run on.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <stdexcept>

#include "cpu/dispatch.h"

namespace anycost {

// A float32 CPU tensor (any strides); `dim` >= 0 also checks the rank.
inline void check_float(const at::Tensor& t, const char* name, int64_t dim = -1) {
  TORCH_CHECK(t.device().is_cpu(), "anycost: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, "anycost: ", name, " must be float32, got ", t.scalar_type());
  TORCH_CHECK(dim < 0 || t.dim() == dim, "anycost: ", name, " must have ", dim, " dims, got ", t.sizes());
}

// The kernel table of the level in use (kernels/cpu/dispatch.h); a bad ANYCOST_CPU_CAPABILITY
// becomes a RuntimeError naming the level and the CPU's levels.
inline const cpu::KernelTable& kernels() {
  try {
    return cpu::active_kernels();
  } catch (const std::runtime_error& e) {
    TORCH_CHECK(false, e.what());
  }
}

// at::parallel_for behind the kernels' type-erased ParallelFn.
inline cpu::ParallelFn aten_parallel_fn() {
  cpu::ParallelFn fn;
  fn.run = [](void*, int64_t begin, int64_t end, int64_t grain, cpu::ParallelFn::Body body, void* body_ctx) {
    at::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) { body(body_ctx, b, e); });
  };
  return fn;
}

}  // namespace anycost
