// The AVX-512 level of the CPU kernels (16-lane zmm vectors; AVX-512 F, BW, VL, DQ with AVX2 and
// FMA), compiled for that instruction set by a target pragma whatever the build's flags; run only
// where cpuid reports all of them. See isa_kernels.inc.
#if defined(__x86_64__) && defined(__GNUC__)
#define ANYCOST_CPU_CAPABILITY_AVX512 1
#include "isa_prelude.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#endif

#define ANYCOST_CPU_CAPABILITY_ENUM Capability::AVX512
#define ANYCOST_CPU_LEVEL_NAME "avx512"
#include "isa_kernels.inc"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
