// Shared helpers for the C++ kernel tests: harness selection, deterministic
// random tensors, strided views and the tolerance check.
#pragma once

#if defined(ANYCOST_MINI_GTEST)
#include "mini_gtest.h"
#else
#include <gtest/gtest.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace testutil {

inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

struct CompareResult {
  bool ok = true;
  double max_abs = 0, rms_ref = 0;
  size_t worst = 0;
  std::string msg() const {
    std::ostringstream os;
    os << "max_abs_err=" << max_abs << " rms_ref=" << rms_ref << " worst_index=" << worst;
    return os.str();
  }
};

// |got - ref| <= rtol * (|ref| + rms(ref)) elementwise (relative error with
// a floor at the typical magnitude, so cancellations near 0 do not fail).
template <class GetGot>
CompareResult compare(const std::vector<double>& ref, GetGot got, double rtol = 1e-5) {
  CompareResult r;
  double s = 0;
  for (double v : ref) s += v * v;
  r.rms_ref = ref.empty() ? 0 : std::sqrt(s / ref.size());
  for (size_t k = 0; k < ref.size(); ++k) {
    const double g = got(k);
    const double e = std::fabs(g - ref[k]);
    if (!(e <= rtol * (std::fabs(ref[k]) + r.rms_ref) + 1e-30)) r.ok = false;
    if (!(e <= r.max_abs)) {
      r.max_abs = std::isnan(e) ? INFINITY : e;
      r.worst = k;
    }
  }
  return r;
}

}  // namespace testutil
