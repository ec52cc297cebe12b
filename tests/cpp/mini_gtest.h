// Minimal stand-in for the GoogleTest subset used by tests/cpp, used only when
// CMake cannot find GTest (ANYCOST_MINI_GTEST is then defined). Supports TEST,
// EXPECT_/ASSERT_ TRUE/FALSE/EQ/LE/LT/NEAR, EXPECT_THROW, SCOPED_TRACE and
// streaming extra messages with <<. Each test file is one executable.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace mini_gtest {

struct Registry {
  std::vector<std::pair<std::string, std::function<void()>>> tests;
  std::vector<std::string> traces;
  bool current_failed = false;
  static Registry& get() {
    static Registry r;
    return r;
  }
};

struct Registrar {
  Registrar(const char* name, std::function<void()> f) { Registry::get().tests.emplace_back(name, f); }
};

// Collects a failure message; prints it when destroyed.
struct Failure {
  std::ostringstream os;
  bool fatal;
  Failure(const char* file, int line, const std::string& what, bool f) : fatal(f) {
    os << file << ":" << line << ": Failure: " << what;
  }
  template <class T>
  Failure& operator<<(const T& v) {
    os << " " << v;
    return *this;
  }
  ~Failure() {
    auto& r = Registry::get();
    r.current_failed = true;
    std::fprintf(stderr, "%s\n", os.str().c_str());
    for (auto& t : r.traces) std::fprintf(stderr, "  trace: %s\n", t.c_str());
  }
};

struct Voidify {
  template <class T>
  void operator&(const T&) const {}
};

struct ScopedTrace {
  ScopedTrace(const char* file, int line, const std::string& msg) {
    std::ostringstream os;
    os << file << ":" << line << ": " << msg;
    Registry::get().traces.push_back(os.str());
  }
  ~ScopedTrace() { Registry::get().traces.pop_back(); }
};

inline int run_all() {
  auto& r = Registry::get();
  int failed = 0;
  for (auto& t : r.tests) {
    r.current_failed = false;
    std::printf("[ RUN      ] %s\n", t.first.c_str());
    t.second();
    std::printf("%s %s\n", r.current_failed ? "[  FAILED  ]" : "[       OK ]", t.first.c_str());
    failed += r.current_failed;
  }
  std::printf("%d test(s), %d failed\n", static_cast<int>(r.tests.size()), failed);
  return failed ? 1 : 0;
}

}  // namespace mini_gtest

#define MG_CAT2(a, b) a##b
#define MG_CAT(a, b) MG_CAT2(a, b)
#define TEST(suite, name)                                                          \
  static void suite##_##name##_body();                                             \
  static mini_gtest::Registrar suite##_##name##_reg(#suite "." #name,              \
                                                    suite##_##name##_body);        \
  static void suite##_##name##_body()

#define MG_CHECK(cond, what, fatal) \
  if (cond) {                       \
  } else                            \
    return_if_fatal_##fatal mini_gtest::Failure(__FILE__, __LINE__, what, fatal)
#define return_if_fatal_false
#define return_if_fatal_true return mini_gtest::Voidify() &

#define EXPECT_TRUE(c) MG_CHECK((c), "EXPECT_TRUE(" #c ")", false)
#define EXPECT_FALSE(c) MG_CHECK(!(c), "EXPECT_FALSE(" #c ")", false)
#define ASSERT_TRUE(c) MG_CHECK((c), "ASSERT_TRUE(" #c ")", true)
#define ASSERT_FALSE(c) MG_CHECK(!(c), "ASSERT_FALSE(" #c ")", true)
#define EXPECT_EQ(a, b) MG_CHECK((a) == (b), "EXPECT_EQ(" #a ", " #b ")", false)
#define ASSERT_EQ(a, b) MG_CHECK((a) == (b), "ASSERT_EQ(" #a ", " #b ")", true)
#define EXPECT_LE(a, b) MG_CHECK((a) <= (b), "EXPECT_LE(" #a ", " #b ")", false)
#define EXPECT_LT(a, b) MG_CHECK((a) < (b), "EXPECT_LT(" #a ", " #b ")", false)
#define EXPECT_NEAR(a, b, tol) \
  MG_CHECK(std::fabs((a) - (b)) <= (tol), "EXPECT_NEAR(" #a ", " #b ", " #tol ")", false)
#define EXPECT_THROW(stmt, exc)                                   \
  do {                                                            \
    bool mg_thrown = false;                                       \
    try {                                                         \
      stmt;                                                       \
    } catch (const exc&) {                                        \
      mg_thrown = true;                                           \
    } catch (...) {                                               \
    }                                                             \
    EXPECT_TRUE(mg_thrown) << "expected exception " #exc;         \
  } while (0)
#define SCOPED_TRACE(msg) \
  mini_gtest::ScopedTrace MG_CAT(mg_trace_, __LINE__)(__FILE__, __LINE__, (msg))

int main() { return mini_gtest::run_all(); }
