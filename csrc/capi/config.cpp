// Architecture arithmetic and the rules of a sub-generator config, as anycost/models/stylegan2/arch.py
// and config.py: the width formula, the resolutions a model outputs, uniform and flexible widths.
#include <cmath>
#include <string>

#include "error.h"
#include "model.h"

namespace anycost {
namespace capi {

namespace {

// Channels of the official code before the channel multiplier, per resolution (BASE_CHANNELS).
int base_channels(int res) {
  switch (res) {
    case 4: return 4096;
    case 8: return 2048;
    case 16: return 1024;
    case 32: return 512;
    case 64: return 256;
    case 128: return 128;
    case 256: return 64;
    case 512: return 32;
    case 1024: return 16;
  }
  return 0;
}

constexpr int kMinResolution = 8;  // the smallest output of a sub-generator (MIN_RESOLUTION)

// log2 of a power of two in [1, 2^30], else -1.
int log2_exact(int v) {
  if (v < 1 || v > (1 << 30)) return -1;
  int k = 0;
  while ((1 << k) < v) ++k;
  return (1 << k) == v ? k : -1;
}

std::string list_text(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

int Arch::channels(int res, double ratio) const {
  // Python: min(channel_max, int(BASE[res] * ratio * multiplier)), in double, left to right.
  const double v = std::trunc(double(base_channels(res)) * ratio * channel_multiplier);
  return v >= double(channel_max) ? channel_max : static_cast<int>(v);
}

int Arch::n_styles() const { return n_layers(resolution); }

int n_layers(int resolution) { return 2 * log2_exact(resolution) - 2; }

int layer_resolution(int layer) { return 1 << (layer / 2 + 2); }

std::vector<int> resolutions(const Arch& arch) {
  std::vector<int> out;
  for (int r = kMinResolution; r <= arch.resolution; r *= 2) out.push_back(r);
  return out;
}

void check_resolution(const Arch& arch, int resolution) {
  for (int r : resolutions(arch))
    if (r == resolution) return;
  throw Error(ANYCOST_E_RESOLUTION, "unknown resolution " + std::to_string(resolution) +
                                        ": this generator can output " + list_text(resolutions(arch)));
}

std::vector<int> uniform_widths(const Arch& arch, int resolution, double ratio) {
  if (!(ratio > 0 && ratio <= 1))  // also NaN
    throw Error(ANYCOST_E_WIDTH, "ratio must be in (0, 1], got " + std::to_string(ratio));
  std::vector<int> widths;
  for (int i = 0; i < n_layers(resolution); ++i) {
    widths.push_back(arch.channels(layer_resolution(i), ratio));
    if (widths.back() < 1)
      throw Error(ANYCOST_E_WIDTH, "ratio " + std::to_string(ratio) + " leaves layer " + std::to_string(i) + " (" +
                                       std::to_string(layer_resolution(i)) + " px) without channels");
  }
  return widths;
}

void check_widths(const Model& m, int resolution, const int* widths, int count) {
  check_resolution(m.arch, resolution);
  const int expected = n_layers(resolution);
  if (count != expected)
    throw Error(ANYCOST_E_WIDTH, std::to_string(resolution) + " px needs " + std::to_string(expected) +
                                     " layer widths, got " + std::to_string(count));
  if (!widths) throw Error(ANYCOST_E_ARGUMENT, "widths is NULL");
  for (int i = 0; i < count; ++i) {
    const int full = m.full_widths[i];
    if (widths[i] < 1 || widths[i] > full)
      throw Error(ANYCOST_E_WIDTH, "width of layer " + std::to_string(i) + " (" +
                                       std::to_string(layer_resolution(i)) + " px) must be in [1, " +
                                       std::to_string(full) + "], got " + std::to_string(widths[i]));
  }
}

}  // namespace capi
}  // namespace anycost
