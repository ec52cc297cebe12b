// C entry point of the core-pair probe, called through ctypes by anycost/ops/_ext.py: the round trip of one cache
// line between two threads pinned to two CPUs. Two cores that share a last-level cache hand a line over in tens of
// nanoseconds; cores that do not (another CCD of a Zen CPU, another socket) take several times that, and every layer
// whose output one thread writes and the other reads pays it. A virtual machine's host may move its vCPUs between
// such placements while it runs (measured: 53-88 ns or 290-335 ns on one 2-vCPU Zen 4 guest, flipping within
// seconds to minutes, with the 2-thread image-to-image forwards 2x apart), so the benchmarks record the probe beside
// their timings.
#include <atomic>
#include <chrono>
#include <thread>

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#endif

namespace {

#ifdef __linux__
bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// The line both threads write: 0 = the pinger's turn, 1 = the ponger's, -1 = the ponger could not pin (it then
// still answers, so the pinger never waits forever). Aligned so that nothing else shares it.
struct alignas(64) Line {
  std::atomic<int> turn{0};
};
#endif

}  // namespace

extern "C" {

// Mean round trip in ns over `rounds` (after rounds / 10 unmeasured ones) between a thread pinned to `cpu_a` and
// one pinned to `cpu_b`. -1: a thread could not be pinned (a CPU outside this process's set, or not Linux); -2: bad
// arguments (the same CPU twice would only measure the scheduler's time slices). The calling thread's own affinity
// is left as it was.
__attribute__((visibility("default"))) double anycost_core_pair_ns(int cpu_a, int cpu_b, int rounds) {
  if (cpu_a < 0 || cpu_b < 0 || cpu_a == cpu_b || rounds < 1) return -2.0;
#ifdef __linux__
  if (cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE) return -2.0;
  Line line;
  std::atomic<bool> pinned_b{true};
  const int warmup = rounds / 10, total = warmup + rounds;
  double ns = -1.0;
  std::thread pinger([&] {
    if (!pin_to(cpu_a)) {
      line.turn.store(-1, std::memory_order_release);  // tells the ponger to stop at once
      return;
    }
    std::chrono::steady_clock::time_point start;
    for (int i = 0; i < total; ++i) {
      if (i == warmup) start = std::chrono::steady_clock::now();
      line.turn.store(1, std::memory_order_release);
      int t;
      while ((t = line.turn.load(std::memory_order_acquire)) == 1) {
      }
      if (t < 0) return;  // the ponger could not pin
    }
    ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / rounds;
    line.turn.store(-1, std::memory_order_release);
  });
  std::thread ponger([&] {
    const bool ok = pin_to(cpu_b);
    pinned_b.store(ok);
    for (;;) {
      int t;
      while ((t = line.turn.load(std::memory_order_acquire)) == 0) {
      }
      if (t < 0) return;
      line.turn.store(ok ? 0 : -1, std::memory_order_release);
      if (!ok) return;
    }
  });
  pinger.join();
  ponger.join();
  return pinned_b.load() ? ns : -1.0;
#else
  return -1.0;
#endif
}

}
