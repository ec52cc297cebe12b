// The generator as libanycost holds it: the architecture (as anycost/models/stylegan2/arch.py), the
// weights of every layer (read-only after loading; sub-generators read prefix slices of them in
// place through strides, never copies), and the functions that run it: the mapping (mapping.cpp),
// the synthesis of one config (synthesis.cpp) and the config rules (config.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/dispatch.h"

namespace anycost {
namespace capi {

// The shape of a StyleGAN2 generator (GeneratorArch in Python), with its defaults.
struct Arch {
  int resolution = 0;
  double channel_multiplier = 2;
  int channel_max = 512;
  int style_dim = 512;
  int n_mlp = 8;
  double lr_mlp = 0.01;

  // The official width formula: min(channel_max, int(BASE[res] * ratio * channel_multiplier)).
  int channels(int res, double ratio = 1.0) const;
  // W+ entries / layer widths at the full resolution (18 at 1024 px).
  int n_styles() const;
};

// Layer widths of a config at `resolution` (2 * log2(resolution) - 2: the constant input, conv1,
// then two per resolution from 8 px up); the spatial size of the feature map of width entry `layer`.
int n_layers(int resolution);
int layer_resolution(int layer);

// An equalised-lr linear layer: y[o] = scale * sum_i weight[o, i] x[i] + bias[o] (weight [out, in],
// row-major); a sliced one computes the leading outputs only.
struct Linear {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int out = 0, in = 0;
  float scale = 1.f;
};

// A modulated convolution: conv1 / convs.* (3x3, demodulated, constant noise, bias and scaled leaky
// ReLU, every second one upsampling) or a ToRGB (1x1, no demodulation, bias, plus the upsampled
// skip image). `weight` is the full [c_out, c_in, k, k] tensor.
// A 3x3 conv run by the int8 kernels (kernels/cpu/qconv_params.h) instead of from its fp32 weight, as
// anycost.compression.int8 runs it (in a render of a compressed file, int8_layers.h, and in the torch op's one-call
// forward of an int8 model). Everything but `smooth` is of the config's [c_out, c_in] slice of the layer.
struct Int8Conv {
  const int8_t* packed = nullptr;      // the slice's int8 weight, packed (qconv_params.h)
  const int32_t* wsum = nullptr;       // [c_out, 9] from the packing
  const float* scales = nullptr;       // [c_out]: per-channel weight scale x the layer's weight_scale (x the
                                       // calibrated activation scale, unless dynamic)
  const float* square_sums = nullptr;  // [c_out, c_in]: sums over the taps of (dequantised weight x weight_scale)^2
  const float* smooth = nullptr;       // [c_in or more]: the smoothing factors the input channels are divided by
  bool dynamic = true;                 // each sample's own activation scale (else act_scale)
  float act_scale = 1.f;
};

// A 3x3 conv of a compressed file that may run int8 (compressed.cpp loads it): the full layer's weight quantised
// per output channel after the smoothing factors, derived from the dense weight as anycost.compression.int8's
// quantize_weight derives it, and the rule of where it runs int8 (Int8StyledConv.runs_int8, int8_layers.h).
struct Int8Layer {
  std::vector<int8_t> q;      // [c_out, c_in, 3, 3] of the full layer (empty: the conv runs fp32 only)
  std::vector<float> scales;  // [c_out]
  std::vector<float> smooth;  // [c_in]
  bool dynamic = true;        // each sample's own activation scale (else act_scale)
  float act_scale = 1.f;
  int min_channels = 1, min_size = 1;
};

struct StyledLayer {
  const float* weight = nullptr;
  uint64_t weight_id = 0, weight_version = 0;  // names the weight's values (cpu::ModConvParams'; 0: unnamed)
  int c_out = 0, c_in = 0, k = 3;
  float weight_scale = 1.f;  // 1 / sqrt(c_in * k * k) of the FULL layer
  Linear modulation;         // w -> styles of the input channels
  bool upsample = false, demodulate = true, activate = true;
  const float* noise = nullptr;  // noise [n or 1, noise_size, noise_size] (convs only)
  int noise_size = 0;
  int64_t noise_sn = 0;          // floats between the samples' noise; 0: one noise for the batch
  float noise_strength = 0.f;
  const float* bias = nullptr;  // [c_out]
};

// The scratch memory of a render, kept between the calls on one model (synthesis.cpp): a fresh block
// costs a page fault and the zeroing of a page per 4 KiB on first touch (the two 128 MiB feature maps of
// a 1024 px render: 64k faults). A call takes the kept block when it is big enough, else a new one, and
// gives it back when done; one block, the larger, stays kept until the model is freed. Concurrent
// calls each get their own block.
class ScratchKeeper {
 public:
  ScratchKeeper() = default;
  ScratchKeeper(const ScratchKeeper&) = delete;
  ScratchKeeper& operator=(const ScratchKeeper&) = delete;
  ~ScratchKeeper();
  // A 64-byte aligned block of at least `floats` floats, its size in `got` (std::bad_alloc).
  float* take(size_t floats, size_t& got);
  void give_back(float* block, size_t floats);

 private:
  std::mutex mu_;
  float* kept_ = nullptr;
  size_t kept_floats_ = 0;
};

struct Model {
  Arch arch;
  std::vector<int> full_widths;      // full width of every layer
  std::vector<Linear> mapping;       // n_mlp layers; biases already times lr_mlp (as Python adds them)
  const float* input = nullptr;      // the constant input [full_widths[0], 4, 4]
  std::vector<StyledLayer> convs;    // conv1, convs.0, convs.1, ...: conv j maps width j to width j + 1
  std::vector<StyledLayer> to_rgbs;  // to_rgb1, to_rgbs.0, ...: ToRGB t reads width 2t + 1
  const float* w_avg = nullptr;      // [style_dim]
  std::vector<Int8Layer> int8;       // per conv of a compressed file with int8 layers (else empty)
  std::vector<float> storage;        // every tensor above points into this
  mutable ScratchKeeper scratch;     // the renders' scratch between calls
};

// Loads and checks a generator file (model_load.cpp); capi::Error on any problem.
std::unique_ptr<Model> load_model(const std::string& path);

// Resolutions the model can output, smallest first (config.cpp).
std::vector<int> resolutions(const Arch& arch);
// capi::Error(ANYCOST_E_RESOLUTION) unless `resolution` is one of them.
void check_resolution(const Arch& arch, int resolution);
// The widths of the uniform config of `ratio` (capi::Error(ANYCOST_E_WIDTH) for a ratio outside
// (0, 1] or one that leaves a layer without channels).
std::vector<int> uniform_widths(const Arch& arch, int resolution, double ratio);
// capi::Error(ANYCOST_E_WIDTH) unless `count` widths fit `resolution`, each in [1, full].
void check_widths(const Model& m, int resolution, const int* widths, int count);

// The parallel-for of one call and the kernels of the instruction-set level in use.
struct Exec {
  const cpu::KernelTable& kernels;
  const cpu::ParallelFn& pf;
  int threads;
};

// y [n, L.out or `out`] = linear(x [n, L.in]) (mapping.cpp); `out` < L.out computes a prefix.
void linear(const Linear& L, int out, const float* x, int n, float* y, const Exec& ex);
// z [n, style_dim] -> w [n, style_dim] (mapping.cpp).
void mapping(const Model& m, const float* z, int n, float* w, const Exec& ex);

// One render call (synthesis.cpp); arguments as anycost_render, already checked.
struct RenderRequest {
  const float* w = nullptr;
  int n = 0;
  bool w_plus = false;
  int w_entries = 0;  // W+ entries per sample (0: n_styles)
  int resolution = 0;
  std::vector<int> widths;
  const float* truncation_mean = nullptr;  // nullptr: none
  float truncation = 1.f;
  std::vector<const Int8Conv*> int8;  // per conv, the int8 slice it runs (null: fp32); empty: every conv fp32
  float* rgb = nullptr;
};
// The floats of scratch memory synthesize needs for q.
size_t synthesis_scratch_floats(const Model& m, const RenderRequest& q);
// Renders q into q.rgb; `scratch`: synthesis_scratch_floats(m, q) floats, 64-byte aligned.
void synthesize(const Model& m, const RenderRequest& q, const Exec& ex, float* scratch);

}  // namespace capi
}  // namespace anycost
