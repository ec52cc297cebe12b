// The output cache of the native ops.
//
// Why: a fresh large tensor costs a page fault and the zeroing of a page per 4 KiB on its first write,
// because glibc maps every block above 32 MiB anew and unmaps it when it is freed. The 128 MiB output of
// a 32-channel 1024 px layer took 34 ms to allocate and fill against 9 ms to refill (AMX Xeon), and a
// config-f forward at 1024 px first-touches 0.5 GiB of outputs (131k page faults). A generator asks
// for the same sizes every forward, so the blocks our outputs free are kept and handed out again.
//
// The image-to-image ops split planes of 2 pages and more between their threads at page boundaries
// (kernels/cpu/parallel.h, page_bands), which needs page-aligned outputs: the outputs of the 256 px
// student's trunk are 0.6 MiB, hence the cache from 64 KiB and its blocks aligned to pages.
//
// What: an at::Allocator behind the ops' outputs (at::detail::empty_generic, so the storage stays
// resizable). Requests under 64 KiB go straight to c10::alloc_cpu. Larger ones take a free block of
// exactly their size, else a new one (4 KiB aligned); a freed block joins the free list (most recent first), the
// least recently freed blocks are released while the list holds more than the cap:
// ANYCOST_OUTPUT_CACHE_MB (default 1024; 0 turns the cache off). anycost_output_cache() (C, for
// ctypes: anycost.ops.output_cache_bytes / clear_output_cache) reports or releases what it holds.
#include "output_cache.h"

#include <c10/core/impl/alloc_cpu.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <utility>

namespace anycost {
namespace {

constexpr size_t kMinCachedBytes = size_t(64) << 10;

// The cap from ANYCOST_OUTPUT_CACHE_MB: a non-negative whole number of MiB.
size_t cap_from_env() {
  const char* v = std::getenv("ANYCOST_OUTPUT_CACHE_MB");
  if (!v || !*v) return size_t(1024) << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  TORCH_CHECK(*end == '\0' && mb >= 0, "anycost: ANYCOST_OUTPUT_CACHE_MB must be a whole number of MiB >= 0, got '",
              v, "'");
  return size_t(mb) << 20;
}

constexpr size_t kPageBytes = 4096;

void* page_alloc(size_t n) {
  void* p = std::aligned_alloc(kPageBytes, (n + kPageBytes - 1) / kPageBytes * kPageBytes);
  TORCH_CHECK(p, "anycost: out of memory allocating ", n, " bytes");
  return p;
}

struct Block {
  void* ptr;
  size_t bytes;
};

class OutputCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    if (n < kMinCachedBytes) {
      void* p = c10::alloc_cpu(n);
      return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    Block* b = take(n);
    return {b->ptr, b, &give_back, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, size_t count) const override { default_copy_data(dest, src, count); }

  size_t held() {
    std::lock_guard<std::mutex> g(mu_);
    return free_bytes_;
  }
  void clear() { trim(0); }

 private:
  Block* take(size_t n) {
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if ((*it)->bytes == n) {
          Block* b = *it;
          free_.erase(it);
          free_bytes_ -= n;
          return b;
        }
    }
    return new Block{page_alloc(n), n};
  }

  static void give_back(void* ctx) {
    OutputCache& c = instance();
    Block* b = static_cast<Block*>(ctx);
    {
      std::lock_guard<std::mutex> g(c.mu_);
      c.free_.push_front(b);
      c.free_bytes_ += b->bytes;
    }
    c.trim(c.cap());
  }

  // Releases the least recently freed blocks until at most `limit` bytes are held.
  void trim(size_t limit) {
    std::list<Block*> out;
    {
      std::lock_guard<std::mutex> g(mu_);
      while (free_bytes_ > limit) {
        out.push_back(free_.back());
        free_bytes_ -= free_.back()->bytes;
        free_.pop_back();
      }
    }
    for (Block* b : out) {
      std::free(b->ptr);
      delete b;
    }
  }

  size_t cap() {
    std::call_once(cap_once_, [this] { cap_ = cap_from_env(); });
    return cap_;
  }

 public:
  // Never destroyed: tensors may be freed during static destruction.
  static OutputCache& instance() {
    static OutputCache* c = new OutputCache();
    return *c;
  }
  void check_env() { cap(); }

 private:
  std::mutex mu_;
  std::list<Block*> free_;
  size_t free_bytes_ = 0;
  std::once_flag cap_once_;
  size_t cap_ = 0;
};

}  // namespace

at::Tensor cached_empty(at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat format) {
  OutputCache& c = OutputCache::instance();
  c.check_env();
  return at::detail::empty_generic(sizes, &c, c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   c10::typeMetaToScalarType(options.dtype()), format);
}

}  // namespace anycost

extern "C" {

// The bytes the output cache holds in free blocks; with `clear` != 0 it releases them first.
__attribute__((visibility("default"))) size_t anycost_output_cache(int clear) {
  anycost::OutputCache& c = anycost::OutputCache::instance();
  if (clear) c.clear();
  return c.held();
}

}
