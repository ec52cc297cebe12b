#include "wino_weight_cache.h"

#include <cstdlib>
#include <new>
#include <utility>

namespace anycost {
namespace cpu {
namespace {

bool same(const WinoWeightKey& a, const WinoWeightKey& b) {
  return a.id == b.id && a.version == b.version && a.weight == b.weight && a.w_so == b.w_so && a.w_si == b.w_si &&
         a.w_sh == b.w_sh && a.w_sw == b.w_sw && a.C_in == b.C_in && a.C_out == b.C_out && a.tile == b.tile &&
         a.MC == b.MC && a.KC == b.KC && a.MR == b.MR;
}

}  // namespace

WinoWeightCache::WinoWeightCache(size_t max_bytes) : max_bytes_(max_bytes) {}

FloatBlock WinoWeightCache::allocate(size_t floats) {
  const size_t bytes = (sizeof(float) * floats + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes > 0 ? bytes : 64);
  if (!p) throw std::bad_alloc();
  return FloatBlock(static_cast<float*>(p), [](float* q) { std::free(q); });
}

FloatBlock WinoWeightCache::get(const WinoWeightKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (same(it->key, key)) {
      entries_.splice(entries_.begin(), entries_, it);
      return it->block;
    }
  return nullptr;
}

void WinoWeightCache::put(const WinoWeightKey& key, FloatBlock block, size_t floats) {
  const size_t bytes = sizeof(float) * floats;
  if (bytes > max_bytes_) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (same(it->key, key)) {
      bytes_ -= it->bytes;
      entries_.erase(it);
      break;
    }
  entries_.push_front(Entry{key, std::move(block), bytes});
  bytes_ += bytes;
  while (bytes_ > max_bytes_) {
    bytes_ -= entries_.back().bytes;
    entries_.pop_back();
  }
}

void WinoWeightCache::drop(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();)
    if (it->key.id == id) {
      bytes_ -= it->bytes;
      it = entries_.erase(it);
    } else {
      ++it;
    }
}

void WinoWeightCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  bytes_ = 0;
}

size_t WinoWeightCache::bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

WinoWeightCache& wino_weight_cache() {
  static WinoWeightCache cache([] {
    const char* mb = std::getenv("ANYCOST_WINOGRAD_CACHE_MB");
    const double v = mb ? std::strtod(mb, nullptr) : 256.0;
    return static_cast<size_t>(v > 0 ? v * (1 << 20) : 0);
  }());
  return cache;
}

}  // namespace cpu
}  // namespace anycost
