// Instruction-set level of the kernel code being compiled, and its namespace.
//
// Every kernel header (simd.h, conv_microkernel.h, modconv_*.h, upfirdn2d_blocked.h,
// bias_act_blocked.h, parallel.h) puts its code in anycost::cpu::<level> (an inline namespace, so
// code compiled for one level can still say anycost::cpu::foo). The level comes from
//   * ANYCOST_CPU_CAPABILITY_{PORTABLE,AVX2,AVX512,AVX512_VNNI}, defined by the per-level translation
//     units of the run-time dispatch (isa_portable.cpp, isa_avx2.cpp, isa_avx512.cpp,
//     isa_avx512_vnni.cpp; the last compiles only the int8 kernels), which compile the
//     headers under `#pragma GCC target` (the ISA macros such as __AVX2__ do not follow that pragma
//     in C++, hence explicit macros);
//   * otherwise the compiler flags (-mavx2 -mfma, -mavx512f/bw/vl/dq [-mavx512vnni], -march=...), for the C++ tests
//     and benchmarks that compile the headers directly; ANYCOST_CPU_FORCE_SCALAR forces portable.
// Distinct namespaces give every level its own copy of each inline function and template, so the
// linker can never merge an AVX-512 copy with the one baseline code calls (see isa_kernels.inc).
#pragma once

#if defined(ANYCOST_CPU_CAPABILITY_AVX512_VNNI) || defined(ANYCOST_CPU_CAPABILITY_AVX512) || \
    defined(ANYCOST_CPU_CAPABILITY_AVX2) || defined(ANYCOST_CPU_CAPABILITY_PORTABLE)
// Chosen by the including translation unit.
#elif !defined(ANYCOST_CPU_FORCE_SCALAR) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__FMA__) && defined(__AVX512VNNI__)
#define ANYCOST_CPU_CAPABILITY_AVX512_VNNI 1
#elif !defined(ANYCOST_CPU_FORCE_SCALAR) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__FMA__)
#define ANYCOST_CPU_CAPABILITY_AVX512 1
#elif !defined(ANYCOST_CPU_FORCE_SCALAR) && defined(__AVX2__) && defined(__FMA__)
#define ANYCOST_CPU_CAPABILITY_AVX2 1
#else
#define ANYCOST_CPU_CAPABILITY_PORTABLE 1
#endif

// ANYCOST_CPU_AVX2: AVX2+FMA intrinsics usable (also at the AVX-512 level);
// ANYCOST_CPU_AVX512: AVX-512 F/BW/VL/DQ intrinsics usable, 16-lane vectors;
// ANYCOST_CPU_AVX512_VNNI: also AVX512_VNNI (vpdpbusd). It is not implied by the avx512 level (Skylake-X
// has AVX-512 without it), so it is a level of its own above avx512, used by the int8 kernels only
// (its fp32 kernels are the avx512 ones: see dispatch.cpp).
#if defined(ANYCOST_CPU_CAPABILITY_AVX512_VNNI)
#define ANYCOST_CPU_NS avx512_vnni
#define ANYCOST_CPU_AVX2 1
#define ANYCOST_CPU_AVX512 1
#define ANYCOST_CPU_AVX512_VNNI 1
#elif defined(ANYCOST_CPU_CAPABILITY_AVX512)
#define ANYCOST_CPU_NS avx512
#define ANYCOST_CPU_AVX2 1
#define ANYCOST_CPU_AVX512 1
#define ANYCOST_CPU_AVX512_VNNI 0
#elif defined(ANYCOST_CPU_CAPABILITY_AVX2)
#define ANYCOST_CPU_NS avx2
#define ANYCOST_CPU_AVX2 1
#define ANYCOST_CPU_AVX512 0
#define ANYCOST_CPU_AVX512_VNNI 0
#else
#define ANYCOST_CPU_NS portable
#define ANYCOST_CPU_AVX2 0
#define ANYCOST_CPU_AVX512 0
#define ANYCOST_CPU_AVX512_VNNI 0
#endif

#if ANYCOST_CPU_AVX2
#include <immintrin.h>
#endif

#define ANYCOST_CPU_NAMESPACE_BEGIN \
  namespace anycost {               \
  namespace cpu {                   \
  inline namespace ANYCOST_CPU_NS {
#define ANYCOST_CPU_NAMESPACE_END \
  }                               \
  }                               \
  }
