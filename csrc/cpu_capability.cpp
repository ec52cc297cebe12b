// C entry points of the instruction-set level choice (kernels/cpu/dispatch.h), called through
// ctypes by anycost/ops/_ext.py (they take and return plain C types; errors come back as text).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu/dispatch.h"

namespace {

// Copies s into buf (truncated, NUL-terminated); returns the full length.
int copy_out(const std::string& s, char* buf, size_t size) {
  if (buf && size) {
    const size_t n = std::min(s.size(), size - 1);
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return static_cast<int>(s.size());
}

}  // namespace

extern "C" {

// The level in use, resolved now if not yet. Returns 0 with its name in buf, or 1 with the error.
__attribute__((visibility("default"))) int anycost_cpu_capability(char* buf, size_t size) {
  try {
    copy_out(anycost::cpu::active_kernels().name, buf, size);
    return 0;
  } catch (const std::exception& e) {
    copy_out(e.what(), buf, size);
    return 1;
  }
}

// The levels this CPU supports, comma-separated, lowest first.
__attribute__((visibility("default"))) int anycost_cpu_capabilities(char* buf, size_t size) {
  std::string s;
  for (anycost::cpu::Capability c : anycost::cpu::cpu_capabilities())
    s += (s.empty() ? "" : ",") + std::string(anycost::cpu::capability_name(c));
  copy_out(s, buf, size);
  return 0;
}

// Forces a level ("" returns to ANYCOST_CPU_CAPABILITY / the best level). 0, or 1 with the error.
__attribute__((visibility("default"))) int anycost_set_cpu_capability(const char* level, char* buf, size_t size) {
  try {
    anycost::cpu::set_active_capability(level ? level : "");
    return 0;
  } catch (const std::exception& e) {
    copy_out(e.what(), buf, size);
    return 1;
  }
}

// anycost::cpu::rgb_head_pays (modconv_params.h): 1 when a ToRGB fused into the conv before it pays.
__attribute__((visibility("default"))) int anycost_rgb_head_pays(int64_t c_out, int64_t pixels, int keep_out) {
  return anycost::cpu::rgb_head_pays(c_out, pixels, keep_out != 0) ? 1 : 0;
}

// Testing: pretend the CPU supports no level above max_level (0 portable, 1 avx2, 2 avx512, 3 avx512_vnni;
// -1 no cap).
__attribute__((visibility("default"))) int anycost_limit_cpu_capabilities_for_testing(int max_level, char*, size_t) {
  anycost::cpu::limit_cpu_capabilities_for_testing(max_level);
  return 0;
}

}  // extern "C"
