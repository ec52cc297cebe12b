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

// An out_peak array (ModConvParams / QConvParams) against the output it tracked: peak[n * C + o] must be
// max |out[n, o]| exactly (the same floats). Returns "" or the first mismatch.
inline std::string check_peaks(const std::vector<float>& peak, const float* out, int64_t N, int64_t C, int64_t H,
                               int64_t W, int64_t o_sn, int64_t o_sc, int64_t o_sh) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < C; ++o) {
      float want = 0.f;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) want = std::max(want, std::fabs(out[n * o_sn + o * o_sc + y * o_sh + x]));
      if (peak[n * C + o] != want) {
        std::ostringstream os;
        os << "out_peak n=" << n << " o=" << o << ": got " << peak[n * C + o] << " want " << want;
        return os.str();
      }
    }
  return "";
}

}  // namespace testutil
