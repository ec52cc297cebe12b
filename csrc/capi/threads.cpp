// Thread count and the per-call ParallelFn (see threads.h).
#include "threads.h"

#include <atomic>
#include <cstdlib>

namespace anycost {
namespace capi {

namespace {

std::atomic<int> g_threads{0};  // 0: the default

// ANYCOST_NUM_THREADS when it is a positive integer, else OpenMP's (or the hardware's) default.
int default_threads() {
  if (const char* env = std::getenv("ANYCOST_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) return static_cast<int>(v);
  }
  return cpu::ThreadedFor::default_threads();
}

}  // namespace

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0); }

int num_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

CallThreads::CallThreads() : pool_(num_threads()) {
  fn_.ctx = &pool_;
  fn_.run = [](void* ctx, int64_t begin, int64_t end, int64_t grain, cpu::ParallelFn::Body body, void* body_ctx) {
    (*static_cast<const cpu::ThreadedFor*>(ctx))(begin, end, grain,
                                                  [&](int64_t b, int64_t e) { body(body_ctx, b, e); });
  };
}

}  // namespace capi
}  // namespace anycost
