// The AVX2 + FMA level of the CPU kernels (8-lane ymm vectors), compiled for that instruction set
// by a target pragma whatever the build's flags; run only where cpuid reports AVX2 and FMA.
// See isa_kernels.inc.
#if defined(__x86_64__) && defined(__GNUC__)
#define ANYCOST_CPU_CAPABILITY_AVX2 1
#include "isa_prelude.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define ANYCOST_CPU_CAPABILITY_ENUM Capability::AVX2
#define ANYCOST_CPU_LEVEL_NAME "avx2"
#include "isa_kernels.inc"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
