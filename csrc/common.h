// Shared glue of the torch CPU wrappers (csrc/<op>_cpu.cpp): argument checks and the
// at::parallel_for adapter the torch-free kernels of kernels/cpu take.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace anycost {

// A float32 CPU tensor (any strides); `dim` >= 0 also checks the rank.
inline void check_float(const at::Tensor& t, const char* name, int64_t dim = -1) {
  TORCH_CHECK(t.device().is_cpu(), "anycost: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, "anycost: ", name, " must be float32, got ", t.scalar_type());
  TORCH_CHECK(dim < 0 || t.dim() == dim, "anycost: ", name, " must have ", dim, " dims, got ", t.sizes());
}

// The `pf(begin, end, grain, f)` callable of kernels/cpu/parallel.h, on torch's thread pool.
inline auto aten_parallel_for() {
  return [](int64_t begin, int64_t end, int64_t grain, const auto& f) { at::parallel_for(begin, end, grain, f); };
}

}  // namespace anycost
