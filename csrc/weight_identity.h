// Names a weight tensor's values for the kernels' caches of derived weights (ModConvParams::weight_id and
// weight_version; kernels/cpu/wino_weight_cache.h): the id stands for the tensor's storage while it lives (a
// storage freed and another allocated at the same address get different ids), the version is its version
// counter, which every in-place update through torch moves (optimizer steps, load_state_dict, copy_ under
// no_grad; not writes through `.data`, which shares the storage but not the counter).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace anycost {

struct WeightIdentity {
  uint64_t id = 0, version = 0;  // id 0: none (an inference tensor, which has no version counter)
};

WeightIdentity weight_identity(const at::Tensor& weight);

}  // namespace anycost
