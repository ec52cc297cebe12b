// The int8 convs of a compressed model in a render (anycost.compression.int8's Int8StyledConv, in C): which convs
// of a config run int8, and their packed [c_out, c_in] slices, built on first use and kept per (conv, c_out, c_in)
// in a cache bounded by bytes, as the Python layer keeps them per slice (`_packed`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "cpu/dispatch.h"
#include "model.h"

namespace anycost {
namespace capi {

// Int8StyledConv.runs_int8: the layer's rule (min(c_in, c_out) >= min_channels, input of `size` >= min_size px)
// and, for a plain conv, a level whose int8 micro-kernel has a dot-product instruction (plain_convs_pay: elsewhere
// the fp32 Winograd convs are faster); the upsampling convs always run int8.
bool runs_int8(const Int8Layer& L, int c_in, int c_out, int size, bool upsample, cpu::Capability level);

// quantize_weight: q [c_out, c_in, 9] and scales [c_out] of the dense weight w [c_out, c_in, 9] times the smoothing
// factors [c_in] (per output channel: max |w * smooth| / 127 rounded to 16 significant bits, q rounded half to
// even and clamped to [-127, 127]), the same values as the Python code computes.
void quantize_weight(const float* w, int c_out, int c_in, const float* smooth, int8_t* q, float* scales);

// One conv's [c_out, c_in] slice as the int8 kernels take it (Int8Conv points into the vectors).
struct Int8Slice {
  std::vector<int8_t> packed;
  std::vector<int32_t> wsum;
  std::vector<float> scales, square_sums;
  Int8Conv conv;
  size_t bytes() const;
};

class Int8Slices {
 public:
  // The slice of conv j at [c_out, c_in] (m.int8[j] must hold a weight), built with `pack` if not kept. When a new
  // slice would pass the budget, the kept ones are dropped first (a call holds its own through the shared_ptr).
  std::shared_ptr<const Int8Slice> get(const Model& m, int j, int c_out, int c_in, const cpu::QConvKernels& pack);

 private:
  std::mutex mu_;
  std::map<std::tuple<int, int, int>, std::shared_ptr<const Int8Slice>> kept_;
  size_t bytes_ = 0;
  static constexpr size_t max_bytes_ = size_t(256) << 20;  // config-f, all four uniform ratios: 108 MiB
};

// Points q.int8 at the slices of the convs of `m` that run int8 in request q at kernel level `k`; returns them, to
// be held for the call (nothing for a model without int8 layers).
std::vector<std::shared_ptr<const Int8Slice>> attach_int8(const Model& m, Int8Slices& slices, RenderRequest& q,
                                                         const cpu::KernelTable& k);

}  // namespace capi
}  // namespace anycost
