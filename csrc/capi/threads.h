// The threads of libanycost's calls: a process-wide count (anycost_set_num_threads, else
// ANYCOST_NUM_THREADS, else OpenMP's default) and the kernels' ParallelFn over that many threads
// (kernels/cpu/parallel.h ThreadedFor: OpenMP when built with it, else std::thread).
#pragma once

#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace anycost {
namespace capi {

// n >= 1: use n threads from now on; 0: back to the default.
void set_num_threads(int n);
// The count a call started now uses (>= 1).
int num_threads();

// The parallel-for of one call; holds its thread count for the whole call.
class CallThreads {
 public:
  CallThreads();
  CallThreads(const CallThreads&) = delete;  // fn_ points at pool_
  CallThreads& operator=(const CallThreads&) = delete;
  const cpu::ParallelFn& fn() const { return fn_; }
  int count() const { return pool_.num_threads(); }

 private:
  cpu::ThreadedFor pool_;
  cpu::ParallelFn fn_;
};

}  // namespace capi
}  // namespace anycost
