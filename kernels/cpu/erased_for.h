// The kernels' parallel_for callable on top of the type-erased ParallelFn of the dispatch
// (dispatch.h), for the per-level translation units (isa_kernels.inc, isa_qconv.inc).
#pragma once

#include "isa.h"

#include <cstdint>

#include "dispatch.h"

ANYCOST_CPU_NAMESPACE_BEGIN

struct ErasedFor {
  const ParallelFn& fn;
  template <class F>
  void operator()(int64_t begin, int64_t end, int64_t grain, const F& f) const {
    if (begin >= end) return;
    fn.run(fn.ctx, begin, end, grain, &ErasedFor::body<F>, const_cast<void*>(static_cast<const void*>(&f)));
  }
  template <class F>
  static void body(void* f, int64_t begin, int64_t end) {
    (*static_cast<const F*>(f))(begin, end);
  }
};

ANYCOST_CPU_NAMESPACE_END
