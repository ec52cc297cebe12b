// Run-time choice of the instruction-set level of the CPU kernels (torch-free).
//
// The kernels are compiled once per level (isa_portable.cpp, isa_avx2.cpp, isa_avx512.cpp; see
// isa_kernels.inc), each into its own namespace, and each level exports one KernelTable of
// function pointers. The avx512_vnni level differs from avx512 in its int8 kernels only
// (isa_avx512_vnni.cpp compiles just those; its table takes the other entries from avx512's). This header and dispatch.cpp are baseline code: they read cpuid, pick a
// table (ANYCOST_CPU_CAPABILITY forces one) and never call into a level the CPU lacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modconv_params.h"
#include "op_params.h"
#include "qconv_params.h"

namespace anycost {
namespace cpu {

// Ordered: each level needs the ones below it.
enum class Capability : int { Portable = 0, AVX2 = 1, AVX512 = 2, AVX512VNNI = 3 };
constexpr int kNumCapabilities = 4;

// "portable", "avx2", "avx512", "avx512_vnni".
const char* capability_name(Capability c);
// Parses a level name (as above); false for anything else.
bool parse_capability(const std::string& name, Capability* out);
// The levels this CPU (and OS) can run, from cpuid, lowest first; always starts with Portable.
//   avx2:   AVX2 + FMA;   avx512: AVX-512 F, BW, VL and DQ (+ AVX2, FMA);
//   avx512_vnni: avx512 + AVX512_VNNI (Cascade Lake, Ice Lake, Zen 4, ...; Skylake-X lacks it).
std::vector<Capability> cpu_capabilities();
// Comma-separated names of cpu_capabilities() ("portable, avx2, avx512, avx512_vnni").
std::string cpu_capabilities_string();

// The parallel_for the kernels run on, type-erased so that the per-level code never sees the
// caller's types (at::parallel_for in the torch glue; SerialFor / ThreadedFor in the C++ tests):
// run(ctx, begin, end, grain, body, body_ctx) calls body(body_ctx, b, e) on sub-ranges.
struct ParallelFn {
  using Body = void (*)(void* body_ctx, int64_t begin, int64_t end);
  void (*run)(void* ctx, int64_t begin, int64_t end, int64_t grain, Body body, void* body_ctx) = nullptr;
  void* ctx = nullptr;
};

// The int8 kernels of one level (qconv_blocked.h). `name`: the level they were compiled for (the
// avx512_vnni table's are avx512_vnni's, every other table's its own level's).
struct QConvKernels {
  const char* name;
  void (*pack)(const QConvPackParams& p);  // the same packed layout at every level
  void (*conv2d)(const QConvParams& p, const QConvBlocking& b, const ParallelFn& pf);
};

// The kernels of one level. Every entry throws std::invalid_argument on bad parameters.
struct KernelTable {
  Capability level;
  const char* name;
  int vec_len;  // fp32 lanes per vector
  void (*modulated_conv2d)(const ModConvParams& p, const ModConvBlocking& b, const ParallelFn& pf);
  void (*upfirdn2d)(const UpFirDn2dParams& p, const ParallelFn& pf);
  void (*add_upsampled_skip)(const AddUpsampledSkipParams& p, const ParallelFn& pf);
  void (*bias_act)(const BiasActParams& p, const ParallelFn& pf);
  void (*depthwise_conv3x3)(const DepthwiseConv3x3Params& p, const ParallelFn& pf);
  void (*pointwise_conv)(const PointwiseConvParams& p, const ParallelFn& pf);
  void (*small_conv2d)(const SmallConv2dParams& p, const ParallelFn& pf);
  void (*small_conv_transpose2d)(const SmallConvTranspose2dParams& p, const ParallelFn& pf);
  void (*bf16_epilogue)(const Bf16EpilogueParams& p, const ParallelFn& pf);
  QConvKernels qconv;
};

// A process-wide unique nonzero id for a weight's values (ModConvParams::weight_id).
uint64_t new_weight_id();

// The table compiled for a level, or nullptr when this build has none (non-x86 builds have only
// Portable). Does not check the CPU: call only levels in cpu_capabilities().
const KernelTable* compiled_kernels(Capability c);

// The process-wide choice: ANYCOST_CPU_CAPABILITY (portable | avx2 | avx512 | avx512_vnni) when set, else the
// highest level of cpu_capabilities(). Resolved on the first call; a forced level the CPU lacks,
// or an unknown name, throws std::runtime_error naming it and the CPU's levels (on every call).
const KernelTable& active_kernels();
// Testing: pretend the CPU supports no level above max_level (-1: no cap), to exercise the errors
// for a missing level on any CPU. Affects cpu_capabilities() and later resolutions.
void limit_cpu_capabilities_for_testing(int max_level);
// Replaces the choice (testing): a level name, or "" to resolve from the environment again.
// Throws std::runtime_error (as above) and leaves the choice unchanged on a bad level.
void set_active_capability(const std::string& level);

}  // namespace cpu
}  // namespace anycost
