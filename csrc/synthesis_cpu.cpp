// CPU kernel of anycost::synthesis: the whole StyleGAN2 synthesis network of one config in one native call, the C
// library's (csrc/capi/synthesis.cpp) over the module's own tensors. Every layer is the same fused modulated conv
// the Python layers call (an int8 model's int8 convs the int8 conv kernel, `int8_convs`); what one call saves is
// Python, the dispatcher and the glue around each of the ~30 layers and style products (bench/bench_capi.py, AMX
// Xeon: the bundled model's 64 px / 0.25 preview in 0.62 ms against 1.24 layer by layer).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "capi/error.h"
#include "capi/model.h"
#include "capi/model_build.h"
#include "common.h"
#include "cpu/qconv_params.h"
#include "output_cache.h"
#include "weight_identity.h"

namespace anycost {
namespace {

// The generator's tensors by name (a strided one as a contiguous copy for the call), each checked when a layer asks
// for it: float32, CPU, the shape `want` gives (a noise: a batch of 1 or n).
class Tensors {
 public:
  Tensors(at::TensorList tensors, const c10::List<std::string>& names, const std::map<std::string, capi::Shape>& want,
          int64_t n)
      : want_(want), n_(n) {
    TORCH_CHECK(tensors.size() == names.size(), "anycost: synthesis: ", tensors.size(), " tensors but ", names.size(),
                " names");
    for (size_t i = 0; i < tensors.size(); ++i) {
      by_name_.emplace(names.get(i), tensors[i].contiguous());
      if (tensors[i].is_contiguous()) originals_.emplace(names.get(i), weight_identity(tensors[i]));
    }
  }

  // What names the values of tensor `name` (weight_identity.h): none for a strided one, which the call copies.
  WeightIdentity identity(const std::string& name) const {
    const auto it = originals_.find(name);
    return it == originals_.end() ? WeightIdentity() : it->second;
  }

  const at::Tensor& get(const std::string& name) const {
    const at::Tensor* found = find(name);
    TORCH_CHECK(found, "anycost: synthesis: no tensor '", name, "'");
    const at::Tensor& t = *found;
    check_float(t, name.c_str());
    const capi::Shape& want = want_.at(name);
    const bool noise = name.rfind("noises.", 0) == 0;
    bool same = t.dim() == static_cast<int64_t>(want.size());
    for (int64_t d = 0; same && d < t.dim(); ++d)
      same = t.size(d) == want[d] || (noise && d == 0 && t.size(0) == n_);
    TORCH_CHECK(same, "anycost: synthesis: '", name, "' has shape ", t.sizes(), ", expected ", at::IntArrayRef(want),
                noise ? " (or a batch of N)" : "");
    return t;
  }

  // The tensor `name`, or null when not given (an int8 conv's parts, which `int8_convs` checks).
  const at::Tensor* find(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<std::string, at::Tensor> by_name_;
  std::unordered_map<std::string, WeightIdentity> originals_;
  const std::map<std::string, capi::Shape>& want_;
  int64_t n_;
};

// capi::expected_tensors of the generator, kept per thread for the last one asked (a preview calls this op every
// frame with the same generator; building the map of ~100 names costs as much as a small layer).
const std::map<std::string, capi::Shape>& expected(const capi::Arch& a, const std::vector<int>& full) {
  thread_local int resolution = 0, style_dim = 0;
  thread_local std::vector<int> widths;
  thread_local std::map<std::string, capi::Shape> want;
  if (a.resolution != resolution || a.style_dim != style_dim || full != widths) {
    want = capi::expected_tensors(a, full);
    resolution = a.resolution, style_dim = a.style_dim, widths = full;
  }
  return want;
}

// The part `name` of an int8 conv: a CPU tensor of `type` and `shape`.
const at::Tensor& int8_part(const Tensors& named, const std::string& name, at::ScalarType type, at::IntArrayRef shape) {
  const at::Tensor* t = named.find(name);
  TORCH_CHECK(t, "anycost: synthesis: '", name, "' is missing: an int8 conv needs its int8.packed, int8.wsum, "
              "int8.scales, int8.square_sums and int8.smooth");
  TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == type && t->sizes() == shape, "anycost: synthesis: '", name,
              "' must be a ", type, " CPU tensor of shape ", shape, ", got ", t->scalar_type(), " ", t->sizes(),
              " on ", t->device());
  return *t;
}

// The int8 convs of an int8 model (anycost.compression.int8): conv j (p = conv1, convs.<j - 1>) runs int8 when
// "<p>.int8.packed" is given, with "<p>.int8.wsum", ".scales", ".square_sums", ".smooth" (and ".act_scale" [1] for a
// calibrated activation scale) of its [c_out, c_in] slice in this config (capi::Int8Conv); `q` holds them (one per
// conv) for the call and `request` points at them.
void int8_convs(const capi::Model& m, const Tensors& named, const std::vector<int>& wd,
                std::vector<capi::Int8Conv>& q, capi::RenderRequest& request) {
  q.assign(m.convs.size(), capi::Int8Conv());
  request.int8.assign(m.convs.size(), nullptr);
  for (size_t j = 0; j < m.convs.size(); ++j) {
    const std::string p = capi::conv_name(static_cast<int>(j)) + ".int8.";
    if (!named.find(p + "packed")) continue;
    const int64_t c_in = wd[j], c_out = wd[j + 1];
    capi::Int8Conv& Q = q[j];
    Q.packed = int8_part(named, p + "packed", at::kChar,
                         {cpu::qconv_out_tiles(c_out), cpu::qconv_in_groups(c_in), 9, cpu::kQPackMR, cpu::kQGroup})
                   .data_ptr<int8_t>();
    Q.wsum = int8_part(named, p + "wsum", at::kInt, {c_out, 9}).data_ptr<int32_t>();
    Q.scales = int8_part(named, p + "scales", at::kFloat, {c_out}).data_ptr<float>();
    Q.square_sums = int8_part(named, p + "square_sums", at::kFloat, {c_out, c_in}).data_ptr<float>();
    Q.smooth = int8_part(named, p + "smooth", at::kFloat, {c_in}).data_ptr<float>();
    if (named.find(p + "act_scale")) {
      Q.dynamic = false;
      Q.act_scale = *int8_part(named, p + "act_scale", at::kFloat, {1}).data_ptr<float>();
    }
    request.int8[j] = &Q;
  }
}

at::Tensor synthesis_cpu(const at::Tensor& w, at::TensorList tensors, c10::List<std::string> names,
                         at::IntArrayRef full_widths, at::IntArrayRef widths, int64_t resolution) {
  check_float(w, "w");
  TORCH_CHECK(w.dim() == 2 || w.dim() == 3, "anycost: synthesis: w must be [N, style_dim] or [N, entries, style_dim], "
              "got ", w.sizes());
  const int64_t n = w.size(0), layers = static_cast<int64_t>(widths.size());
  TORCH_CHECK(n > 0, "anycost: synthesis: w has an empty batch");
  capi::Model m;
  m.arch.resolution = static_cast<int>(resolution);
  m.arch.style_dim = static_cast<int>(w.size(-1));
  m.arch.n_mlp = 0;  // the mapping does not run here: no style.* tensors
  std::vector<int> wd(widths.begin(), widths.end());
  try {
    TORCH_CHECK(resolution >= 8 && resolution <= 1024 && (resolution & (resolution - 1)) == 0,
                "anycost: synthesis: resolution must be a power of two in [8, 1024], got ", resolution);
    TORCH_CHECK(static_cast<int64_t>(full_widths.size()) == capi::n_layers(static_cast<int>(resolution)),
                "anycost: synthesis: ", resolution, " px has ", capi::n_layers(static_cast<int>(resolution)),
                " layers, got ", full_widths.size(), " full widths");
    m.full_widths.assign(full_widths.begin(), full_widths.end());
    capi::check_widths(m, static_cast<int>(resolution), wd.data(), static_cast<int>(layers));
  } catch (const capi::Error& e) {
    TORCH_CHECK(false, "anycost: synthesis: ", e.what());
  }
  TORCH_CHECK(w.dim() == 2 || w.size(1) >= layers, "anycost: synthesis: W+ needs ", layers, " entries, got ",
              w.size(1));
  const Tensors named(tensors, names, expected(m.arch, m.full_widths), n);
  capi::build_synthesis(m, [&](const std::string& name) { return named.get(name).data_ptr<float>(); });
  for (size_t j = 0; j < m.convs.size(); ++j) {
    const at::Tensor& noise = named.get("noises.noise_" + std::to_string(j));
    m.convs[j].noise_sn = noise.size(0) == 1 ? 0 : noise.stride(0);
    const WeightIdentity id = named.identity(capi::conv_name(static_cast<int>(j)) + ".conv.weight");
    m.convs[j].weight_id = id.id, m.convs[j].weight_version = id.version;
  }
  const at::Tensor wc = w.contiguous();
  capi::RenderRequest q;
  std::vector<capi::Int8Conv> int8;
  int8_convs(m, named, wd, int8, q);
  q.w = wc.data_ptr<float>(), q.n = static_cast<int>(n);
  q.w_plus = w.dim() == 3, q.w_entries = w.dim() == 3 ? static_cast<int>(w.size(1)) : 0;
  q.resolution = static_cast<int>(resolution), q.widths = wd;
  at::Tensor rgb = at::empty({n, 3, resolution, resolution}, w.options());
  q.rgb = rgb.data_ptr<float>();
  const at::Tensor scratch =
      cached_empty({static_cast<int64_t>(capi::synthesis_scratch_floats(m, q))}, w.options());
  const cpu::ParallelFn pf = aten_parallel_fn();
  capi::synthesize(m, q, capi::Exec{kernels(), pf, at::get_num_threads()}, scratch.data_ptr<float>());
  return rgb;
}

}  // namespace
}  // namespace anycost

TORCH_LIBRARY_IMPL(anycost, CPU, m) { m.impl("synthesis", &anycost::synthesis_cpu); }
