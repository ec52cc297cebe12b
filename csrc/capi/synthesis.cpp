// The synthesis network of one config, as Generator.forward(w, config, noise="const") in
// anycost/models/stylegan2/generator.py: the constant input sliced to widths[0], conv1 and ToRGB1,
// then per resolution an upsampling conv, a conv and a ToRGB whose output adds the upsampled skip
// image; a lower resolution stops after its own ToRGB. Every layer is one call of the fused
// modulated-conv kernel on prefix slices of the stored weights (strided views, no copies), a conv given int8
// weights (RenderRequest::int8) one of the int8 conv kernel, a ToRGB the RGB head of the conv before it where
// cpu::rgb_head_pays says so, or always after an int8 conv (then the last conv's output,
// which only its ToRGB reads, is never written); the styles come from the layer's modulation
// (mapping.cpp). The scratch memory of a call is one block the caller gives (the C API: from the model's
// ScratchKeeper, model.h; the torch op: from the native ops' output cache).
#include <algorithm>
#include <cmath>
#include <memory>

#include "cpu/parallel.h"
#include "model.h"

namespace anycost {
namespace capi {

namespace {

// Floats rounded up to whole 64-byte lines, so that every part carved from a block stays aligned.
size_t lines(size_t floats) { return (floats + 15) / 16 * 16; }

// A feature map [n, c, h, h] read through strides (the constant input has n-stride 0).
struct Map {
  const float* p;
  int64_t sn, sc, sh;
  int c, h;
};

// dst [n, style_dim] = the w of style entry `s` of every sample, truncated as torch.lerp(mean, w, t).
void style_rows(const Model& m, const RenderRequest& q, int s, float* dst) {
  const int sd = m.arch.style_dim;
  const int64_t per_sample = q.w_plus ? int64_t(q.w_entries ? q.w_entries : m.arch.n_styles()) * sd : sd;
  const float* mean = q.truncation_mean;
  const float t = q.truncation;
  for (int r = 0; r < q.n; ++r) {
    const float* src = q.w + r * per_sample + (q.w_plus ? int64_t(s) * sd : 0);
    float* out = dst + int64_t(r) * sd;
    if (!mean) {
      std::copy(src, src + sd, out);
      continue;
    }
    for (int i = 0; i < sd; ++i)  // torch.lerp's two forms (the exact end point at t = 1)
      out[i] = t < 0.5f && t > -0.5f ? mean[i] + t * (src[i] - mean[i]) : src[i] - (src[i] - mean[i]) * (1.f - t);
  }
}

// One modulated conv: x -> out [n, c_out, h_out, h_out] (null: not written, with a head); `skip`
// [n, 3, h/2, h/2] for a ToRGB; `head`: the ToRGB fused into this conv, if any; `out_peak`: as ModConvParams'.
void run_layer(const StyledLayer& L, const Exec& ex, int n, const Map& x, int c_out, const float* styles,
               const float* skip, float* out, const cpu::RgbHead& head = cpu::RgbHead(), float* out_peak = nullptr) {
  cpu::ModConvParams p;
  p.N = n, p.C_in = x.c, p.C_out = c_out, p.H = p.W = x.h;
  p.K = L.k, p.demodulate = L.demodulate, p.upsample = L.upsample, p.weight_scale = L.weight_scale;
  p.x = x.p, p.x_sn = x.sn, p.x_sc = x.sc, p.x_sh = x.sh, p.x_sw = 1;
  const int64_t taps = int64_t(L.k) * L.k;  // the full weight's strides: slicing is a smaller view
  p.weight = L.weight, p.w_so = L.c_in * taps, p.w_si = taps, p.w_sh = L.k, p.w_sw = 1;
  p.weight_id = L.weight_id, p.weight_version = L.weight_version;
  p.styles = styles, p.s_sn = x.c, p.s_sc = 1;
  if (L.noise) {
    p.noise = L.noise, p.noise_sn = L.noise_sn, p.noise_sh = L.noise_size, p.noise_sw = 1;
    p.noise_strength = L.noise_strength;
  }
  p.bias = L.bias, p.bias_s = 1;
  p.act = L.activate ? cpu::Activation::LRelu : cpu::Activation::Linear;
  if (skip) {
    const int64_t hs = x.h / 2;
    p.skip = skip, p.skip_sn = 3 * hs * hs, p.skip_sc = hs * hs, p.skip_sh = hs, p.skip_sw = 1;
  }
  const int64_t ho = p.H_out();
  p.out = out, p.o_sn = c_out * ho * ho, p.o_sc = ho * ho, p.o_sh = ho, p.o_sw = 1;
  p.rgb = head;
  p.out_peak = out_peak;
  cpu::ModConvBlocking blocking = cpu::machine_modconv_blocking();
  blocking.num_threads = ex.threads;
  ex.kernels.modulated_conv2d(p, blocking, ex.pf);
}

// One conv `L` run int8 from `Q` (no skip: a conv), as anycost/compression/int8.py's Int8StyledConv: the input channels
// scaled by styles / smooth and rounded to int8 in the kernel, the output channels by scales x the demodulation
// rsqrt(sum_i styles_i^2 square_sums[o, i] + 1e-8). `mult` and `out_scale` are scratch of n x c_in and n x c_out;
// x_peak and out_peak as QConvParams' (null: not known, not wanted).
void run_int8_layer(const StyledLayer& L, const Int8Conv& Q, const Exec& ex, int n, const Map& x, int c_out,
                    const float* styles, float* mult, float* out_scale, float* out, const cpu::RgbHead& head,
                    const float* x_peak, float* out_peak) {
  const int c_in = x.c;
  for (int64_t i = 0; i < int64_t(n) * c_in; ++i) mult[i] = styles[i] * styles[i];
  linear(Linear{Q.square_sums, nullptr, c_out, c_in, 1.f}, c_out, mult, n, out_scale, ex);
  for (int r = 0; r < n; ++r) {
    float* os = out_scale + int64_t(r) * c_out;
    for (int o = 0; o < c_out; ++o) os[o] = 1.f / std::sqrt(os[o] + 1e-8f) * Q.scales[o];
    for (int i = 0; i < c_in; ++i) mult[int64_t(r) * c_in + i] = styles[int64_t(r) * c_in + i] / Q.smooth[i];
  }
  cpu::QConvParams p;
  p.N = n, p.C_in = c_in, p.C_out = c_out, p.H = p.W = x.h;
  p.K = 3, p.upsample = L.upsample;
  p.x = x.p, p.x_sn = x.sn, p.x_sc = x.sc, p.x_sh = x.sh, p.x_sw = 1;
  p.styles = mult, p.s_sn = c_in, p.s_sc = 1;
  p.dynamic_scale = Q.dynamic, p.act_scale = Q.act_scale, p.x_peak = x_peak;
  p.packed = Q.packed, p.wsum = Q.wsum;
  p.out_scale = out_scale, p.os_sn = c_out, p.os_sc = 1;
  p.noise = L.noise, p.noise_sn = L.noise_sn, p.noise_sh = L.noise_size, p.noise_sw = 1;
  p.noise_strength = L.noise_strength;
  p.bias = L.bias, p.bias_s = 1;
  p.act = cpu::Activation::LRelu;
  const int64_t ho = p.H_out();
  p.out = out, p.o_sn = c_out * ho * ho, p.o_sc = ho * ho, p.o_sh = ho, p.o_sw = 1;
  p.rgb = head;
  p.out_peak = out_peak;
  cpu::QConvBlocking blocking;
  blocking.num_threads = ex.threads;
  ex.kernels.qconv.conv2d(p, blocking, ex.pf);
}

}  // namespace

ScratchKeeper::~ScratchKeeper() { std::free(kept_); }

float* ScratchKeeper::take(size_t floats, size_t& got) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (kept_ && kept_floats_ >= floats) {
      float* p = kept_;
      got = kept_floats_;
      kept_ = nullptr;
      kept_floats_ = 0;
      return p;
    }
  }
  got = floats;
  return static_cast<float*>(cpu::aligned_malloc_bytes(floats * sizeof(float)));
}

void ScratchKeeper::give_back(float* block, size_t floats) {
  float* drop = block;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (floats > kept_floats_) {
      drop = kept_;
      kept_ = block;
      kept_floats_ = floats;
    }
  }
  std::free(drop);
}

namespace {

// The parts of a render's scratch: two feature maps (ping-pong), two skip images, the styles and w rows of
// one layer, a fused ToRGB's weight, an int8 conv's input and output channel factors and the channel peaks of
// two feature maps (each as large as the styles).
struct ScratchPlan {
  size_t act, skip, style, wrow, head;
  size_t total() const { return 2 * lines(act) + 2 * lines(skip) + 5 * lines(style) + lines(wrow) + lines(head); }
};

ScratchPlan scratch_plan(const Model& m, const RenderRequest& q) {
  const std::vector<int>& wd = q.widths;
  const size_t n = q.n, widest = *std::max_element(wd.begin(), wd.end());
  ScratchPlan s{};
  for (size_t j = 1; j < wd.size(); ++j) {
    const size_t h = layer_resolution(int(j));
    s.act = std::max(s.act, n * wd[j] * h * h);
  }
  s.skip = n * 3 * (q.resolution / 2) * (q.resolution / 2);
  s.style = n * widest;
  s.wrow = n * m.arch.style_dim;
  s.head = n * 3 * widest;
  return s;
}

}  // namespace

size_t synthesis_scratch_floats(const Model& m, const RenderRequest& q) { return scratch_plan(m, q).total(); }

void synthesize(const Model& m, const RenderRequest& q, const Exec& ex, float* scratch) {
  const std::vector<int>& wd = q.widths;
  const int layers = static_cast<int>(wd.size());
  const int n = q.n;
  const ScratchPlan s = scratch_plan(m, q);
  float* const act[2] = {scratch, scratch + lines(s.act)};
  float* const skips[2] = {act[1] + lines(s.act), act[1] + lines(s.act) + lines(s.skip)};
  float* const styles = skips[1] + lines(s.skip);
  float* const wrows = styles + lines(s.style);
  float* const head_w = wrows + lines(s.wrow);  // [n, 3, c]: a fused ToRGB's weight x scale x style
  float* const mult = head_w + lines(s.head);     // an int8 conv's [n, c_in] and [n, c_out] factors
  float* const out_scale = mult + lines(s.style);
  // max |x| per channel of a feature map that a dynamic int8 conv reads (written by the conv before it), which
  // saves that conv its pass over x; x_peak: x's, when tracked.
  float* const peaks[2] = {out_scale + lines(s.style), out_scale + 2 * lines(s.style)};
  const float* x_peak = nullptr;
  auto int8_of = [&](int j) { return q.int8.empty() ? nullptr : q.int8[j]; };
  auto modulate = [&](const StyledLayer& L, int style, int c_in) {
    style_rows(m, q, style, wrows);
    linear(L.modulation, c_in, wrows, n, styles, ex);
  };

  Map x{m.input, 0, 16, 4, wd[0], 4};  // input.input[:, :widths[0]], broadcast over the batch
  const float* skip = nullptr;
  for (int j = 0; j + 1 < layers; ++j) {  // conv j: width j -> j + 1, style j, noise j
    float* out = act[j % 2];
    const int c = wd[j + 1], h = layer_resolution(j + 1), t = j / 2;
    // After conv1 and after each block's second conv: ToRGB t, style 2t + 1, into rgb.
    const bool to_rgb = j % 2 == 0, last = j + 2 == layers;
    float* rgb = !to_rgb ? nullptr : last ? q.rgb : skips[t % 2];
    cpu::RgbHead head;
    // An int8 conv takes its ToRGB at every size (anycost.compression.int8.fuses_to_rgb measured it).
    const StyledLayer& L = m.convs[j];
    const Int8Conv* const Q = int8_of(j);
    if (to_rgb && (Q || cpu::rgb_head_pays(c, int64_t(h) * h, !last))) {
      const StyledLayer& R = m.to_rgbs[t];
      modulate(R, 2 * t + 1, c);
      for (int r = 0; r < n; ++r)
        for (int k = 0; k < 3; ++k)
          for (int o = 0; o < c; ++o)
            head_w[(int64_t(r) * 3 + k) * c + o] =
                R.weight[int64_t(k) * R.c_in + o] * R.weight_scale * styles[int64_t(r) * c + o];
      head.w = head_w, head.bias = R.bias, head.out = rgb;
      if (skip) {
        const int64_t hs = h / 2;
        head.skip = skip, head.skip_sn = 3 * hs * hs, head.skip_sc = hs * hs, head.skip_sh = hs, head.skip_sw = 1;
      }
    }
    modulate(L, j, x.c);
    float* const kept = head.out && last ? nullptr : out;
    const Int8Conv* next_int8 = j + 2 < layers ? int8_of(j + 1) : nullptr;
    float* const out_peak = kept && next_int8 && next_int8->dynamic ? peaks[j % 2] : nullptr;
    if (out_peak) std::fill_n(out_peak, int64_t(n) * c, 0.f);
    if (Q)
      run_int8_layer(L, *Q, ex, n, x, c, styles, mult, out_scale, kept, head, x_peak, out_peak);
    else
      run_layer(L, ex, n, x, c, styles, nullptr, kept, head, out_peak);
    x = Map{out, int64_t(c) * h * h, int64_t(h) * h, h, c, h};
    x_peak = out_peak;
    if (to_rgb) {
      if (!head.out) {
        modulate(m.to_rgbs[t], 2 * t + 1, x.c);
        run_layer(m.to_rgbs[t], ex, n, x, 3, styles, skip, rgb);
      }
      skip = rgb;
    }
  }
}

}  // namespace capi
}  // namespace anycost
