// The tensors of a StyleGAN2 generator by name (the state dict of Python's Generator) and the layers of a
// Model built over them: the generator file loader (model_load.cpp) points them into its storage, the
// torch extension's synthesis op (csrc/synthesis_cpu.cpp) at a module's own tensors.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model.h"

namespace anycost {
namespace capi {

using Shape = std::vector<int64_t>;

inline float inv_sqrt(int64_t fan_in) { return static_cast<float>(1.0 / std::sqrt(double(fan_in))); }

// Every tensor of a generator of `a` with layer widths `full`, with its shape.
inline std::map<std::string, Shape> expected_tensors(const Arch& a, const std::vector<int>& full) {
  const int64_t sd = a.style_dim;
  std::map<std::string, Shape> t;
  for (int i = 1; i <= a.n_mlp; ++i) {
    t["style." + std::to_string(i) + ".weight"] = {sd, sd};
    t["style." + std::to_string(i) + ".bias"] = {sd};
  }
  t["input.input"] = {1, full[0], 4, 4};
  auto styled = [&](const std::string& p, int64_t c_in, int64_t c_out) {
    t[p + ".conv.weight"] = {1, c_out, c_in, 3, 3};
    t[p + ".conv.modulation.weight"] = {c_in, sd};
    t[p + ".conv.modulation.bias"] = {c_in};
    t[p + ".noise.weight"] = {1};
    t[p + ".activate.bias"] = {c_out};
  };
  auto to_rgb = [&](const std::string& p, int64_t c_in) {
    t[p + ".conv.weight"] = {1, 3, c_in, 1, 1};
    t[p + ".conv.modulation.weight"] = {c_in, sd};
    t[p + ".conv.modulation.bias"] = {c_in};
    t[p + ".bias"] = {1, 3, 1, 1};
  };
  styled("conv1", full[0], full[1]);
  to_rgb("to_rgb1", full[1]);
  for (size_t k = 0; 2 * k + 3 < full.size(); ++k) {
    styled("convs." + std::to_string(2 * k), full[1 + 2 * k], full[2 + 2 * k]);
    styled("convs." + std::to_string(2 * k + 1), full[2 + 2 * k], full[3 + 2 * k]);
    to_rgb("to_rgbs." + std::to_string(k), full[3 + 2 * k]);
  }
  for (int i = 0; i + 1 < a.n_styles(); ++i) {
    const int64_t size = int64_t(1) << ((i + 5) / 2);
    t["noises.noise_" + std::to_string(i)] = {1, 1, size, size};
  }
  t["w_avg"] = {sd};
  return t;
}

// The mapping layers of `m` over the tensors `at(name)` gives (const float*).
template <class At>
void build_mapping(Model& m, const At& at) {
  const Arch& a = m.arch;
  for (int i = 1; i <= a.n_mlp; ++i) {
    const std::string p = "style." + std::to_string(i);
    m.mapping.push_back({at(p + ".weight"), at(p + ".bias"), a.style_dim, a.style_dim,
                         static_cast<float>(a.lr_mlp / std::sqrt(double(a.style_dim)))});
  }
}

// The module name of styled conv j (conv j maps width j to width j + 1): conv1, convs.0, convs.1, ...
inline std::string conv_name(int j) { return j == 0 ? "conv1" : "convs." + std::to_string(j - 1); }

// The synthesis layers of `m` (constant input, convs, ToRGBs, w_avg) for its full widths, over the
// tensors `at(name)` gives (const float*). Constant noise: every conv's noise is shared by the batch.
template <class At>
void build_synthesis(Model& m, const At& at) {
  const Arch& a = m.arch;
  const std::vector<int>& full = m.full_widths;
  auto modulation = [&](const std::string& p, int c_in) {
    return Linear{at(p + ".conv.modulation.weight"), at(p + ".conv.modulation.bias"), c_in, a.style_dim,
                  inv_sqrt(a.style_dim)};
  };
  for (int j = 0; j + 1 < static_cast<int>(full.size()); ++j) {  // conv j: width j -> width j + 1
    const std::string p = conv_name(j);
    StyledLayer L;
    L.weight = at(p + ".conv.weight");
    L.c_in = full[j], L.c_out = full[j + 1], L.k = 3;
    L.weight_scale = inv_sqrt(int64_t(L.c_in) * 9);
    L.modulation = modulation(p, L.c_in);
    L.upsample = j % 2 == 1;
    L.noise = at("noises.noise_" + std::to_string(j));
    L.noise_size = layer_resolution(j + 1);
    L.noise_strength = *at(p + ".noise.weight");
    L.bias = at(p + ".activate.bias");
    m.convs.push_back(L);
  }
  for (int t = 0; 2 * t + 1 < static_cast<int>(full.size()); ++t) {  // ToRGB t reads width 2t + 1
    const std::string p = t == 0 ? "to_rgb1" : "to_rgbs." + std::to_string(t - 1);
    StyledLayer L;
    L.weight = at(p + ".conv.weight");
    L.c_in = full[2 * t + 1], L.c_out = 3, L.k = 1;
    L.weight_scale = inv_sqrt(L.c_in);
    L.modulation = modulation(p, L.c_in);
    L.demodulate = false, L.activate = false;
    L.bias = at(p + ".bias");
    m.to_rgbs.push_back(L);
  }
  m.input = at("input.input");
  m.w_avg = at("w_avg");
}

}  // namespace capi
}  // namespace anycost
