// The C entry points of libanycost (anycost.h): argument checks, then the model code; every
// exception becomes a negative return code and a message in `err`, so nothing escapes into C.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "anycost.h"
#include "cpu/wino_weight_cache.h"
#include "error.h"
#include "int8_layers.h"
#include "model.h"
#include "threads.h"

#ifndef ANYCOST_VERSION
#define ANYCOST_VERSION "unknown"
#endif

struct anycost_model {
  std::unique_ptr<anycost::capi::Model> model;
  mutable anycost::capi::Int8Slices int8_slices;  // a compressed model's int8 convs, per (conv, width) rendered
};

namespace {

using anycost::capi::Error;
namespace capi = anycost::capi;
namespace cpu = anycost::cpu;

// A block of the model's ScratchKeeper for the length of one call.
class Lease {
 public:
  Lease(capi::ScratchKeeper& k, size_t floats) : k_(k) { p_ = k_.take(floats, floats_); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { k_.give_back(p_, floats_); }
  float* get() const { return p_; }

 private:
  capi::ScratchKeeper& k_;
  float* p_ = nullptr;
  size_t floats_ = 0;
};

// Copies `msg` into err[0 .. err_len), always NUL-terminated, truncated if need be.
void write_err(char* err, size_t err_len, const std::string& msg) {
  if (!err || err_len == 0) return;
  const size_t k = std::min(err_len - 1, msg.size());
  std::memcpy(err, msg.data(), k);
  err[k] = '\0';
}

// Runs `body`, turning every exception into a code and "<fn>: <message>" in `err` ("" on success).
template <class Body>
int guarded(const char* fn, char* err, size_t err_len, Body&& body) {
  try {
    body();
    write_err(err, err_len, "");
    return ANYCOST_OK;
  } catch (const Error& e) {
    write_err(err, err_len, std::string(fn) + ": " + e.what());
    return e.code();
  } catch (const std::bad_alloc&) {
    write_err(err, err_len, std::string(fn) + ": out of memory");
    return ANYCOST_E_MEMORY;
  } catch (const std::exception& e) {  // the kernels' own checks, a CPU level this machine lacks
    write_err(err, err_len, std::string(fn) + ": " + e.what());
    return ANYCOST_E_INTERNAL;
  } catch (...) {
    write_err(err, err_len, std::string(fn) + ": unknown error");
    return ANYCOST_E_INTERNAL;
  }
}

void require(const void* p, const char* name) {
  if (!p) throw Error(ANYCOST_E_ARGUMENT, std::string(name) + " is NULL");
}

const capi::Model& model_of(const anycost_model* m) {
  require(m, "the model");
  return *m->model;
}

// Writes min(values.size(), cap) values to `out`; returns the count.
int copy_out(const std::vector<int>& values, int* out, int cap) {
  if (cap < 0) throw Error(ANYCOST_E_ARGUMENT, "cap is negative");
  if (cap > 0) require(out, "out");
  for (int i = 0; i < cap && i < static_cast<int>(values.size()); ++i) out[i] = values[i];
  return static_cast<int>(values.size());
}

// Functions that return a count or a code: the count, or the code of the error.
template <class Body>
int counted(const char* fn, Body&& body) {
  int result = 0;
  const int code = guarded(fn, nullptr, 0, [&] { result = body(); });
  return code == ANYCOST_OK ? result : code;
}

}  // namespace

extern "C" {

const char* anycost_version(void) { return ANYCOST_VERSION; }

const char* anycost_cpu_capability(void) {
  try {
    return cpu::active_kernels().name;
  } catch (...) {
    return "unavailable";
  }
}

int anycost_set_num_threads(int n) {
  if (n < 0) return ANYCOST_E_ARGUMENT;
  capi::set_num_threads(n);
  return ANYCOST_OK;
}

int anycost_num_threads(void) { return capi::num_threads(); }

int anycost_set_precision(int precision, char* err, size_t err_len) {
  return guarded("anycost_set_precision", err, err_len, [&] {
    if (precision == ANYCOST_PRECISION_BF16)
      throw Error(ANYCOST_E_UNSUPPORTED,
                  "bf16 is not available: libanycost's kernels are float32 only (bf16 rendering runs through "
                  "PyTorch / oneDNN in the Python package: G(..., precision=\"bf16\"))");
    if (precision != ANYCOST_PRECISION_FP32)
      throw Error(ANYCOST_E_ARGUMENT, "unknown precision " + std::to_string(precision) +
                                          ": use ANYCOST_PRECISION_FP32 or ANYCOST_PRECISION_BF16");
  });
}

anycost_model* anycost_load(const char* path, char* err, size_t err_len) {
  anycost_model* result = nullptr;
  guarded("anycost_load", err, err_len, [&] {
    require(path, "path");
    result = new anycost_model{capi::load_model(path)};
  });
  return result;
}

void anycost_free(anycost_model* m) {
  if (m && m->model)  // its weights' Winograd transforms (anycost::cpu::wino_weight_cache) go with it
    for (const anycost::capi::StyledLayer& L : m->model->convs) anycost::cpu::wino_weight_cache().drop(L.weight_id);
  delete m;
}

int anycost_style_dim(const anycost_model* m) {
  return counted("anycost_style_dim", [&] { return model_of(m).arch.style_dim; });
}

int anycost_num_styles(const anycost_model* m) {
  return counted("anycost_num_styles", [&] { return model_of(m).arch.n_styles(); });
}

int anycost_num_layers(const anycost_model* m) {
  return counted("anycost_num_layers", [&] { return static_cast<int>(model_of(m).full_widths.size()); });
}

int anycost_resolutions(const anycost_model* m, int* out, int cap) {
  return counted("anycost_resolutions", [&] { return copy_out(capi::resolutions(model_of(m).arch), out, cap); });
}

int anycost_full_widths(const anycost_model* m, int resolution, int* out, int cap) {
  return counted("anycost_full_widths", [&] {
    const capi::Model& model = model_of(m);
    if (resolution == 0) resolution = model.arch.resolution;
    capi::check_resolution(model.arch, resolution);
    const std::vector<int> full(model.full_widths.begin(), model.full_widths.begin() + capi::n_layers(resolution));
    return copy_out(full, out, cap);
  });
}

int anycost_check_widths(const anycost_model* m, int resolution, const int* widths, int count, char* err,
                         size_t err_len) {
  return guarded("anycost_check_widths", err, err_len,
                 [&] { capi::check_widths(model_of(m), resolution, widths, count); });
}

int anycost_w_avg(const anycost_model* m, float* out) {
  return guarded("anycost_w_avg", nullptr, 0, [&] {
    const capi::Model& model = model_of(m);
    require(out, "out");
    std::copy(model.w_avg, model.w_avg + model.arch.style_dim, out);
  });
}

int anycost_mapping(const anycost_model* m, const float* z, int n, float* w) {
  return guarded("anycost_mapping", nullptr, 0, [&] {
    const capi::Model& model = model_of(m);
    require(z, "z");
    require(w, "w");
    if (n <= 0) throw Error(ANYCOST_E_ARGUMENT, "n must be positive");
    capi::CallThreads threads;
    capi::mapping(model, z, n, w, capi::Exec{cpu::active_kernels(), threads.fn(), threads.count()});
  });
}

int anycost_render(const anycost_model* m, const float* w, int n, int w_plus, int resolution, const int* widths,
                   float ratio, const float* truncation_mean, float truncation, float* rgb, char* err,
                   size_t err_len) {
  return guarded("anycost_render", err, err_len, [&] {
    const capi::Model& model = model_of(m);
    require(w, "w");
    require(rgb, "rgb");
    if (n <= 0) throw Error(ANYCOST_E_ARGUMENT, "n must be positive, got " + std::to_string(n));
    if (!std::isfinite(truncation)) throw Error(ANYCOST_E_ARGUMENT, "truncation must be finite");
    if (!truncation_mean && truncation != 1.f)
      throw Error(ANYCOST_E_ARGUMENT, "truncation " + std::to_string(truncation) +
                                          " needs a truncation_mean (anycost_w_avg gives the model's)");
    capi::check_resolution(model.arch, resolution);
    capi::RenderRequest q;
    q.w = w, q.n = n, q.w_plus = w_plus != 0, q.resolution = resolution, q.rgb = rgb;
    if (widths) {
      capi::check_widths(model, resolution, widths, capi::n_layers(resolution));
      q.widths.assign(widths, widths + capi::n_layers(resolution));
    } else {
      q.widths = capi::uniform_widths(model.arch, resolution, ratio);
    }
    if (truncation != 1.f) q.truncation_mean = truncation_mean, q.truncation = truncation;
    const cpu::KernelTable& kernels = cpu::active_kernels();
    const auto int8 = capi::attach_int8(model, m->int8_slices, q, kernels);
    capi::CallThreads threads;
    Lease scratch(model.scratch, capi::synthesis_scratch_floats(model, q));
    capi::synthesize(model, q, capi::Exec{kernels, threads.fn(), threads.count()}, scratch.get());
  });
}

}  // extern "C"
