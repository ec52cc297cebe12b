// Run-time choice of the kernels' instruction-set level (see dispatch.h). Baseline code: compiled
// with the build's default flags, it only reads cpuid and function-pointer tables.
#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace anycost {
namespace cpu {

// The tables of the levels this build compiles (isa_<level>.cpp).
inline namespace portable {
extern const KernelTable kernel_table;
}
#if defined(__x86_64__) && defined(__GNUC__)
#define ANYCOST_CPU_HAVE_X86_LEVELS 1
inline namespace avx2 {
extern const KernelTable kernel_table;
}
inline namespace avx512 {
extern const KernelTable kernel_table;
}
inline namespace avx512_vnni {
extern const QConvKernels qconv_kernels;
}
#else
#define ANYCOST_CPU_HAVE_X86_LEVELS 0
#endif

const char* capability_name(Capability c) {
  switch (c) {
    case Capability::Portable: return "portable";
    case Capability::AVX2: return "avx2";
    case Capability::AVX512: return "avx512";
    case Capability::AVX512VNNI: return "avx512_vnni";
  }
  return "unknown";
}

bool parse_capability(const std::string& name, Capability* out) {
  for (int k = 0; k < kNumCapabilities; ++k)
    if (name == capability_name(static_cast<Capability>(k))) {
      *out = static_cast<Capability>(k);
      return true;
    }
  return false;
}

namespace {
std::atomic<int> g_max_level{-1};  // limit_cpu_capabilities_for_testing
}  // namespace

void limit_cpu_capabilities_for_testing(int max_level) { g_max_level.store(max_level); }

std::vector<Capability> cpu_capabilities() {
  std::vector<Capability> levels{Capability::Portable};
#if ANYCOST_CPU_HAVE_X86_LEVELS
  // libgcc's cpuid reading also checks that the OS saves the ymm / zmm state (XGETBV).
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    levels.push_back(Capability::AVX2);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
      levels.push_back(Capability::AVX512);
      if (__builtin_cpu_supports("avx512vnni")) levels.push_back(Capability::AVX512VNNI);
    }
  }
#endif
  const int cap = g_max_level.load();
  while (cap >= 0 && levels.size() > 1 && static_cast<int>(levels.back()) > cap) levels.pop_back();
  return levels;
}

std::string cpu_capabilities_string() {
  std::string s;
  for (Capability c : cpu_capabilities()) s += (s.empty() ? "" : ", ") + std::string(capability_name(c));
  return s;
}

#if ANYCOST_CPU_HAVE_X86_LEVELS
namespace {
// avx512's table with the VNNI int8 kernels (built on first use; copying pointers is baseline code).
const KernelTable* avx512_vnni_table() {
  static const KernelTable table = [] {
    KernelTable t = avx512::kernel_table;
    t.level = Capability::AVX512VNNI;
    t.name = capability_name(Capability::AVX512VNNI);
    t.qconv = avx512_vnni::qconv_kernels;
    return t;
  }();
  return &table;
}
}  // namespace
#endif

const KernelTable* compiled_kernels(Capability c) {
  switch (c) {
    case Capability::Portable: return &portable::kernel_table;
#if ANYCOST_CPU_HAVE_X86_LEVELS
    case Capability::AVX2: return &avx2::kernel_table;
    case Capability::AVX512: return &avx512::kernel_table;
    case Capability::AVX512VNNI: return avx512_vnni_table();
#else
    default: return nullptr;
#endif
  }
  return nullptr;
}

namespace {

// The table for a level name ("" = the best this CPU runs); throws std::runtime_error.
const KernelTable* resolve(const std::string& level, const char* source) {
  const std::vector<Capability> have = cpu_capabilities();
  Capability want = have.back();
  if (!level.empty()) {
    if (!parse_capability(level, &want))
      throw std::runtime_error(std::string("anycost: ") + source + "='" + level +
                               "' is not a CPU level: use portable, avx2, avx512 or avx512_vnni");
    bool supported = false;
    for (Capability c : have) supported = supported || c == want;
    if (!supported)
      throw std::runtime_error(std::string("anycost: ") + source + "=" + level +
                               " asks for a level this CPU lacks; it supports " + cpu_capabilities_string());
  }
  // A level this build did not compile (non-x86 builds) falls back to the next lower one.
  for (int k = static_cast<int>(want); k >= 0; --k)
    if (const KernelTable* t = compiled_kernels(static_cast<Capability>(k))) return t;
  throw std::runtime_error("anycost: no CPU kernels compiled in");
}

std::mutex g_mutex;
std::atomic<const KernelTable*> g_active{nullptr};
std::string g_error;  // set when the environment's level is unusable (guarded by g_mutex)

}  // namespace

uint64_t new_weight_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

const KernelTable& active_kernels() {
  if (const KernelTable* t = g_active.load(std::memory_order_acquire)) return *t;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (const KernelTable* t = g_active.load(std::memory_order_acquire)) return *t;
  if (g_error.empty()) {
    const char* env = std::getenv("ANYCOST_CPU_CAPABILITY");
    try {
      g_active.store(resolve(env ? env : "", "ANYCOST_CPU_CAPABILITY"), std::memory_order_release);
      return *g_active.load(std::memory_order_acquire);
    } catch (const std::runtime_error& e) {
      g_error = e.what();
    }
  }
  throw std::runtime_error(g_error);
}

void set_active_capability(const std::string& level) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (level.empty()) {  // back to the environment's choice, resolved on the next use
    g_error.clear();
    g_active.store(nullptr, std::memory_order_release);
    return;
  }
  const KernelTable* t = resolve(level, "level");
  g_error.clear();
  g_active.store(t, std::memory_order_release);
}

}  // namespace cpu
}  // namespace anycost
