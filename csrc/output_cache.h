// Output tensors of the native ops from a process-wide cache of freed blocks (output_cache.cpp).
#pragma once

#include <ATen/ATen.h>

namespace anycost {

// Like at::empty(sizes, options, format) for a CPU tensor, with storage from the output cache: blocks of
// at least 64 KiB (page-aligned) freed by earlier outputs are handed out again (exact size), so the layer
// outputs of a generator forward, the same sizes every forward, are not first-touched anew each time.
at::Tensor cached_empty(at::IntArrayRef sizes, const at::TensorOptions& options,
                        at::MemoryFormat format = at::MemoryFormat::Contiguous);

}  // namespace anycost
