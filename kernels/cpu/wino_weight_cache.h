// The Winograd path's cache of transformed weights: per (weight values, view, transform layout) one block of
// floats that a layer's calls share (modconv_winograd.h), so that they are built once, not every call.
//
// The weight's values are named by the caller's (weight_id, weight_version) of ModConvParams; the view (pointer,
// strides, channel counts) and the layout (tile, channel blocks, micro-kernel rows) complete the key. An LRU
// bounded by bytes: ANYCOST_WINOGRAD_CACHE_MB (MiB, read once; default 256; 0 disables it); the callers build
// only entries that fit it. One lock around every access; an entry is built outside it (two threads may build
// the same one; the later insert wins, both are correct). config-f's plain 3x3 layers take 103 MiB at full width,
// 156 MiB with the other three uniform ratios (measured through anycost.ops.winograd_cache_bytes()).
//
// Baseline code (wino_weight_cache.cpp, one cache for every instruction-set level): this header only declares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

namespace anycost {
namespace cpu {

struct WinoWeightKey {
  uint64_t id, version;
  const float* weight;
  int64_t w_so, w_si, w_sh, w_sw, C_in, C_out;
  int64_t tile, MC, KC, MR;
};

using FloatBlock = std::shared_ptr<float>;

class WinoWeightCache {
 public:
  explicit WinoWeightCache(size_t max_bytes);
  size_t max_bytes() const { return max_bytes_; }
  // A new block of `floats` (64-byte aligned) for an entry.
  static FloatBlock allocate(size_t floats);
  // The block of `key`, or null.
  FloatBlock get(const WinoWeightKey& key);
  // Keeps `block` (`floats` long) under `key`, dropping the least recently used past the budget.
  void put(const WinoWeightKey& key, FloatBlock block, size_t floats);
  // Drops the entries of weight `id` (whose values are gone: a freed model's).
  void drop(uint64_t id);
  void clear();
  size_t bytes();

 private:
  struct Entry {
    WinoWeightKey key;
    FloatBlock block;
    size_t bytes;
  };
  std::mutex mu_;
  std::list<Entry> entries_;  // most recently used first (a few dozen entries: a scan is enough)
  size_t bytes_ = 0;
  const size_t max_bytes_;
};

// The process-wide cache (ANYCOST_WINOGRAD_CACHE_MB).
WinoWeightCache& wino_weight_cache();

}  // namespace cpu
}  // namespace anycost
