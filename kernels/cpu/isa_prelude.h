// Everything the kernel headers include from outside anycost's kernels, included by the per-level
// translation units (isa_<level>.cpp) *before* they open their `#pragma GCC target` region, so that
// none of it is compiled with that level's instruction set (see isa_kernels.inc). A kernel header
// that needs another standard header must add it here too (tests/ops/test_isa_build.py fails
// otherwise).
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "dispatch.h"
#include "modconv_params.h"
#include "op_params.h"
#include "wino_weight_cache.h"

#define ANYCOST_CPU_ISA_TU 1
