#include "weight_identity.h"

#include <mutex>
#include <unordered_map>

#include "cpu/dispatch.h"
#include "cpu/wino_weight_cache.h"

namespace anycost {

WeightIdentity weight_identity(const at::Tensor& weight) {
  if (weight.is_inference() || !weight.has_storage()) return {};
  struct Known {
    c10::weak_intrusive_ptr<c10::StorageImpl> storage;
    uint64_t id;
  };
  static std::mutex mu;
  static std::unordered_map<const c10::StorageImpl*, Known> known;
  static size_t sweep_at = 64;
  const c10::Storage& storage = weight.storage();
  const c10::StorageImpl* key = storage.unsafeGetStorageImpl();
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(key);
  if (it == known.end() || it->second.storage.expired()) {
    if (known.size() >= sweep_at) {  // forget the storages that died (their ids are never given again)
      for (auto k = known.begin(); k != known.end();) k = k->second.storage.expired() ? known.erase(k) : std::next(k);
      sweep_at = 2 * known.size() + 64;
    }
    it = known.insert_or_assign(key, Known{storage.getWeakStorageImpl(), cpu::new_weight_id()}).first;
  }
  return {it->second.id, static_cast<uint64_t>(weight._version())};
}

}  // namespace anycost

extern "C" {

// The bytes the Winograd weight cache holds (kernels/cpu/wino_weight_cache.h); with `clear` != 0 it drops every
// entry first.
__attribute__((visibility("default"))) size_t anycost_winograd_cache(int clear) {
  anycost::cpu::WinoWeightCache& c = anycost::cpu::wino_weight_cache();
  if (clear) c.clear();
  return c.bytes();
}

}
