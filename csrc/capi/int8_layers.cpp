// The int8 convs of a compressed model in a render (see int8_layers.h).
#include "int8_layers.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "cpu/qconv_params.h"

namespace anycost {
namespace capi {

bool runs_int8(const Int8Layer& L, int c_in, int c_out, int size, bool upsample, cpu::Capability level) {
  if (L.q.empty() || std::min(c_in, c_out) < L.min_channels || size < L.min_size) return false;
  return upsample || level == cpu::Capability::AVX512VNNI;
}

namespace {

// max |w| / 127 rounded half up to 16 significant bits (anycost.compression.int8.weight_scales; the rounding
// makes a scale survive dequantising and quantising again).
float weight_scale_of(float max_abs) {
  const float s = std::max(max_abs, FLT_MIN) / 127.f;
  uint32_t bits;
  std::memcpy(&bits, &s, 4);
  constexpr int kDropped = 23 - 15;
  bits = (bits + (1u << (kDropped - 1))) & ~((1u << kDropped) - 1);
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

}  // namespace

void quantize_weight(const float* w, int c_out, int c_in, const float* smooth, int8_t* q, float* scales) {
  std::vector<float> row(size_t(c_in) * 9);
  for (int o = 0; o < c_out; ++o) {
    float max_abs = 0.f;
    for (int i = 0; i < c_in; ++i)
      for (int t = 0; t < 9; ++t) {
        const float v = w[(int64_t(o) * c_in + i) * 9 + t] * smooth[i];
        row[size_t(i) * 9 + t] = v;
        max_abs = std::max(max_abs, std::fabs(v));
      }
    const float s = scales[o] = weight_scale_of(max_abs);
    for (size_t k = 0; k < row.size(); ++k)
      q[int64_t(o) * c_in * 9 + int64_t(k)] =
          static_cast<int8_t>(std::min(127.f, std::max(-127.f, std::nearbyint(row[k] / s))));
  }
}

size_t Int8Slice::bytes() const {
  return packed.size() + 4 * (wsum.size() + scales.size() + square_sums.size());
}

namespace {

// The slice [c_out, c_in] of conv j: its int8 weight packed (with the sums the zero point needs), the weight scales
// x the layer's weight scale (x the calibrated activation scale) and the sums over the taps of (dense weight x
// weight scale)^2, which give each sample's demodulation (Int8StyledConv._packed and native_tensors).
std::shared_ptr<Int8Slice> build_slice(const Model& m, int j, int c_out, int c_in, const cpu::QConvKernels& k) {
  const Int8Layer& L = m.int8[j];
  const StyledLayer& conv = m.convs[j];
  auto s = std::make_shared<Int8Slice>();
  s->packed.resize(static_cast<size_t>(cpu::qconv_packed_bytes(c_out, c_in, 3)));
  s->wsum.resize(size_t(c_out) * 9);
  cpu::QConvPackParams p;
  p.C_out = c_out, p.C_in = c_in, p.K = 3;
  p.weight = L.q.data(), p.w_so = int64_t(conv.c_in) * 9, p.w_si = 9, p.w_sh = 3, p.w_sw = 1;
  p.packed = s->packed.data(), p.wsum = s->wsum.data();
  k.pack(p);
  s->scales.resize(c_out);
  for (int o = 0; o < c_out; ++o)
    s->scales[o] = L.scales[o] * conv.weight_scale * (L.dynamic ? 1.f : L.act_scale);
  s->square_sums.resize(size_t(c_out) * c_in);
  for (int o = 0; o < c_out; ++o)
    for (int i = 0; i < c_in; ++i) {
      const float* w = conv.weight + (int64_t(o) * conv.c_in + i) * 9;
      float sum = 0.f;
      for (int t = 0; t < 9; ++t) {
        const float v = w[t] * conv.weight_scale;
        sum += v * v;
      }
      s->square_sums[size_t(o) * c_in + i] = sum;
    }
  s->conv.packed = s->packed.data(), s->conv.wsum = s->wsum.data();
  s->conv.scales = s->scales.data(), s->conv.square_sums = s->square_sums.data();
  s->conv.smooth = L.smooth.data();
  s->conv.dynamic = L.dynamic, s->conv.act_scale = L.act_scale;
  return s;
}

}  // namespace

std::shared_ptr<const Int8Slice> Int8Slices::get(const Model& m, int j, int c_out, int c_in,
                                                 const cpu::QConvKernels& pack) {
  const auto key = std::make_tuple(j, c_out, c_in);
  {
    std::lock_guard<std::mutex> g(mu_);
    const auto it = kept_.find(key);
    if (it != kept_.end()) return it->second;
  }
  std::shared_ptr<const Int8Slice> s = build_slice(m, j, c_out, c_in, pack);  // outside the lock
  std::lock_guard<std::mutex> g(mu_);
  const auto it = kept_.find(key);
  if (it != kept_.end()) return it->second;  // another call built it meanwhile
  if (bytes_ + s->bytes() > max_bytes_) kept_.clear(), bytes_ = 0;
  if (s->bytes() <= max_bytes_) kept_.emplace(key, s), bytes_ += s->bytes();
  return s;
}

std::vector<std::shared_ptr<const Int8Slice>> attach_int8(const Model& m, Int8Slices& slices, RenderRequest& q,
                                                         const cpu::KernelTable& k) {
  std::vector<std::shared_ptr<const Int8Slice>> held;
  if (m.int8.empty()) return held;
  q.int8.assign(m.convs.size(), nullptr);
  for (size_t j = 0; j + 1 < q.widths.size(); ++j) {
    const int c_in = q.widths[j], c_out = q.widths[j + 1];
    if (!runs_int8(m.int8[j], c_in, c_out, layer_resolution(int(j)), m.convs[j].upsample, k.level)) continue;
    held.push_back(slices.get(m, int(j), c_out, c_in, k.qconv));
    q.int8[j] = &held.back()->conv;
  }
  return held;
}

}  // namespace capi
}  // namespace anycost
