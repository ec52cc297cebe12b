// The int8 kernels of the avx512_vnni level (AVX-512 F, BW, VL, DQ + AVX512_VNNI: vpdpbusd), compiled
// for that instruction set by a target pragma whatever the build's flags; run only where cpuid
// reports all of them. Only the int8 kernels (isa_qconv.inc): the level's fp32 kernels are avx512's
// (dispatch.cpp builds its table). See isa_kernels.inc for the rules.
#if defined(__x86_64__) && defined(__GNUC__)
#define ANYCOST_CPU_CAPABILITY_AVX512_VNNI 1
#include "isa_prelude.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")
#endif

#define ANYCOST_CPU_LEVEL_NAME "avx512_vnni"
#include "isa_qconv.inc"

ANYCOST_CPU_NAMESPACE_BEGIN
extern const QConvKernels qconv_kernels;
const QConvKernels qconv_kernels = kQConvKernels;
ANYCOST_CPU_NAMESPACE_END

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
