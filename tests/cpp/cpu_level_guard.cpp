// Linked into the per-level test executables (CMakeLists.txt: test_<name>_<level>), compiled with
// the baseline flags: before any code of the level runs (constructor priority 101 precedes the
// tests' static registrations), exits with 77 (ctest: skipped) when this CPU lacks the level the
// executable was compiled for, saying so.
#include <cstdio>
#include <cstdlib>

#ifndef ANYCOST_TEST_LEVEL
#error "define ANYCOST_TEST_LEVEL (0 portable, 1 avx2, 2 avx512, 3 avx512_vnni)"
#endif

namespace {

bool cpu_has_level(int level) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  return level == 0 || (level == 1 && avx2) || (level == 2 && avx512) || (level == 3 && vnni);
#else
  return level == 0;
#endif
}

__attribute__((constructor(101))) void skip_without_level() {
  static const char* names[] = {"portable", "avx2", "avx512", "avx512_vnni"};
  if (!cpu_has_level(ANYCOST_TEST_LEVEL)) {
    std::printf("SKIPPED: this CPU lacks the %s level\n", names[ANYCOST_TEST_LEVEL]);
    std::fflush(stdout);
    std::_Exit(77);
  }
}

}  // namespace
