// The portable level of the CPU kernels: compiled with the build's baseline flags (SSE2 on
// x86-64), 8-lane vectors the compiler auto-vectorises. See isa_kernels.inc.
#define ANYCOST_CPU_CAPABILITY_PORTABLE 1
#include "isa_prelude.h"

#define ANYCOST_CPU_CAPABILITY_ENUM Capability::Portable
#define ANYCOST_CPU_LEVEL_NAME "portable"
#include "isa_kernels.inc"
