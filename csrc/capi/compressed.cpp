// Reading a compressed generator file (see compressed.h); the checks and messages follow files.py's `_decode`.
#include "compressed.h"

#include <cmath>
#include <set>
#include <vector>

#include "error.h"
#include "int8_layers.h"
#include "json.h"

namespace anycost {
namespace capi {

namespace {

Error bad(const std::string& key, const std::string& what) { return Error(ANYCOST_E_FORMAT, "'" + key + "': " + what); }

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// A non-negative integer field of an int8 run entry (absent: `fallback`).
int int_entry(const Json& run, const char* name, int fallback, const std::string& key) {
  const Json* v = run.find(name);
  if (!v) return fallback;
  if (v->type != Json::Type::Number || !v->is_integer || v->integer < 0 || v->integer > (1 << 30))
    throw bad(key, std::string(name) + " must be a non-negative integer");
  return static_cast<int>(v->integer);
}

// How a weight runs int8: its own entry (kind int8) or a k-means weight's "int8" object (files.py's run_spec).
void read_run(const Json& run, Encoding& e, const std::string& key) {
  if (run.type != Json::Type::Object) throw bad(key, "its int8 entry is not a JSON object");
  const Json* scale = run.find("act_scale");
  if (!scale) throw bad(key, "activation scale must be a positive number or null (dynamic); the entry has none");
  if (scale->type == Json::Type::Null) {
    e.dynamic = true;
  } else if (scale->type == Json::Type::Number && scale->number > 0 && std::isfinite(float(scale->number))) {
    e.dynamic = false, e.act_scale = static_cast<float>(scale->number);
  } else {
    throw bad(key, "activation scale must be a positive number or null (dynamic)");
  }
  e.min_channels = int_entry(run, "min_channels", 1, key);
  e.min_size = int_entry(run, "min_size", 1, key);
  e.runs_int8 = true;
}

std::vector<std::string> parts_of(const Encoding& e) {
  if (e.kind == "sparse") return {"mask", "values"};
  if (e.kind == "int8") return {"q", "scale", "smooth"};
  if (e.runs_int8) return {"codebook", "indices", "smooth"};
  return {"codebook", "indices"};
}

// Part `name` of weight `key`: present, 1-D, of `dtype`.
const TensorInfo& part(const SafetensorsFile& f, const std::string& key, const std::string& name,
                       const std::string& dtype) {
  const auto it = f.tensors().find(key + ":" + name);
  if (it == f.tensors().end())
    throw bad(key, "is encoded but its " + name + " (" + key + ":" + name + ") is missing");
  if (it->second.dtype != dtype || it->second.shape.size() != 1)
    throw bad(key, key + ":" + name + " must be a 1-D " + dtype + " tensor, got " + it->second.dtype + " of " +
                       std::to_string(it->second.shape.size()) + " dimensions");
  return it->second;
}

std::vector<unsigned char> read_part_bytes(const SafetensorsFile& f, const std::string& key, const std::string& name,
                                           const std::string& dtype) {
  part(f, key, name, dtype);
  return f.read_bytes(key + ":" + name, dtype);
}

std::vector<float> read_part_f32(const SafetensorsFile& f, const std::string& key, const std::string& name) {
  std::vector<float> out(static_cast<size_t>(part(f, key, name, "F32").numel()));
  f.read_f32(key + ":" + name, out.data());
  return out;
}

// The `count` values of `bits` bits packed little-endian first into `packed` (bitpack.py's unpack_bits).
std::vector<uint8_t> unpack_bits(const std::vector<unsigned char>& packed, int bits, int64_t count,
                                 const std::string& key, const std::string& name) {
  if (static_cast<int64_t>(packed.size()) != (count * bits + 7) / 8)
    throw bad(key, "expected " + std::to_string((count * bits + 7) / 8) + " packed bytes in " + name + " for " +
                       std::to_string(count) + " " + std::to_string(bits) + "-bit values, got " +
                       std::to_string(packed.size()));
  std::vector<uint8_t> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    unsigned v = 0;
    for (int b = 0; b < bits; ++b) {
      const int64_t at = i * bits + b;
      v |= ((packed[static_cast<size_t>(at >> 3)] >> (at & 7)) & 1u) << b;
    }
    out[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
  }
  return out;
}

// The smoothing factors [c_in] of an int8 weight (ones for a file written before they were stored, unless
// `required`): positive and finite.
std::vector<float> smooth_of(const SafetensorsFile& f, const std::string& key, int64_t c_in, bool required) {
  if (!required && !f.tensors().count(key + ":smooth")) return std::vector<float>(static_cast<size_t>(c_in), 1.f);
  std::vector<float> s = read_part_f32(f, key, "smooth");
  bool ok = static_cast<int64_t>(s.size()) == c_in;
  for (float v : s) ok = ok && v > 0;
  if (!ok) throw bad(key, "the smoothing factors must be " + std::to_string(c_in) + " positive finite numbers");
  return s;
}

// conv j of the generator whose weight is `key` ("conv1.conv.weight", "convs.<j - 1>.conv.weight"), or -1.
int conv_index(const std::string& key, size_t convs) {
  for (size_t j = 0; j < convs; ++j)
    if (key == conv_name(static_cast<int>(j)) + ".conv.weight") return static_cast<int>(j);
  return -1;
}

}  // namespace

std::map<std::string, Encoding> read_encodings(const SafetensorsFile& f, const std::map<std::string, Shape>& want) {
  const auto meta = f.metadata().find("encodings");
  if (meta == f.metadata().end()) throw Error(ANYCOST_E_FORMAT, "bad compression metadata (no encodings)");
  const Json j = parse_json(meta->second, "encodings metadata");
  if (j.type != Json::Type::Object) throw Error(ANYCOST_E_FORMAT, "the encodings metadata is not a JSON object");
  std::map<std::string, Encoding> out;
  for (const auto& kv : j.members) {
    const std::string& key = kv.first;
    const Json& spec = kv.second;
    if (!want.count(key)) throw Error(ANYCOST_E_FORMAT, "encoding for unknown weight '" + key + "'");
    if (spec.type != Json::Type::Object) throw bad(key, "has an encoding that is not a JSON object");
    const Json* kind = spec.find("kind");
    Encoding e;
    e.kind = kind && kind->type == Json::Type::String ? kind->string : "";
    if (e.kind == "kmeans") {
      const Json* bits = spec.find("bits");
      if (!bits || bits->type != Json::Type::Number || !bits->is_integer || bits->integer < 1 || bits->integer > 8)
        throw bad(key, "k-means bits must be an integer in 1..8");
      e.bits = static_cast<int>(bits->integer);
      const Json* run = spec.find("int8");
      if (run && run->type != Json::Type::Null) read_run(*run, e, key);
    } else if (e.kind == "int8") {
      read_run(spec, e, key);
    } else if (e.kind != "sparse") {
      throw bad(key, "has an unknown encoding (this libanycost reads sparse, kmeans and int8)");
    }
    out.emplace(key, e);
  }
  return out;
}

void check_encoded_parts(const SafetensorsFile& f, const std::map<std::string, Encoding>& encodings) {
  std::set<std::string> parts;
  for (const auto& kv : encodings)
    for (const std::string& p : parts_of(kv.second)) parts.insert(kv.first + ":" + p);
  for (const auto& kv : f.tensors())
    if (kv.first.find(':') != std::string::npos && !parts.count(kv.first))
      throw Error(ANYCOST_E_FORMAT, "unexpected tensor '" + kv.first + "'");
}

void decode_weight(const SafetensorsFile& f, const std::string& key, const Encoding& e, const Shape& shape,
                   float* dst) {
  const int64_t count = numel(shape);
  if (e.kind == "sparse") {
    const std::vector<uint8_t> mask =
        unpack_bits(read_part_bytes(f, key, "mask", "U8"), 1, count, key, "mask");
    const std::vector<float> values = read_part_f32(f, key, "values");
    int64_t ones = 0;
    for (uint8_t b : mask) ones += b;
    if (static_cast<int64_t>(values.size()) != ones)
      throw bad(key, std::to_string(values.size()) + " values for " + std::to_string(ones) + " mask bits");
    for (int64_t i = 0, k = 0; i < count; ++i) dst[i] = mask[static_cast<size_t>(i)] ? values[k++] : 0.f;
    return;
  }
  if (e.kind == "kmeans") {
    const std::vector<float> codebook = read_part_f32(f, key, "codebook");
    if (codebook.empty() || codebook.size() > (size_t(1) << e.bits))
      throw bad(key, "a codebook of " + std::to_string(codebook.size()) + " values for " + std::to_string(e.bits) +
                         " bits");
    const std::vector<uint8_t> idx =
        unpack_bits(read_part_bytes(f, key, "indices", "U8"), e.bits, count, key, "indices");
    for (int64_t i = 0; i < count; ++i) {
      if (idx[static_cast<size_t>(i)] >= codebook.size())
        throw bad(key, "index " + std::to_string(idx[static_cast<size_t>(i)]) + " past the codebook's " +
                           std::to_string(codebook.size()) + " values");
      dst[i] = codebook[idx[static_cast<size_t>(i)]];
    }
    return;
  }
  // int8: W = q * scale / smooth, per output channel (shape[1]) and input channel (shape[2]).
  if (part(f, key, "q", "I8").numel() != count || part(f, key, "scale", "F32").numel() != shape[1])
    throw bad(key, std::to_string(f.tensors().at(key + ":q").numel()) + " int8 weights and " +
                       std::to_string(f.tensors().at(key + ":scale").numel()) + " scales for a weight of " +
                       std::to_string(count) + " values and " + std::to_string(shape[1]) + " output channels");
  const std::vector<unsigned char> q = read_part_bytes(f, key, "q", "I8");
  const std::vector<float> scales = read_part_f32(f, key, "scale");
  const std::vector<float> smooth = smooth_of(f, key, shape[2], false);
  const int64_t per_out = count / shape[1], taps = per_out / shape[2];
  for (int64_t i = 0; i < count; ++i) {
    const float v = static_cast<float>(static_cast<int8_t>(q[static_cast<size_t>(i)]));
    dst[i] = v * scales[static_cast<size_t>(i / per_out)] / smooth[static_cast<size_t>(i % per_out / taps)];
  }
}

void build_int8_layers(const SafetensorsFile& f, const std::map<std::string, Encoding>& encodings, Model& m) {
  for (const auto& kv : encodings) {
    if (!kv.second.runs_int8) continue;
    const int j = conv_index(kv.first, m.convs.size());
    if (j < 0) throw bad(kv.first, "runs int8 but is not the weight of a 3x3 styled conv");
    if (m.int8.empty()) m.int8.resize(m.convs.size());
    const StyledLayer& conv = m.convs[j];
    Int8Layer& L = m.int8[j];
    L.smooth = smooth_of(f, kv.first, conv.c_in, kv.second.kind == "kmeans");
    L.q.resize(size_t(conv.c_out) * conv.c_in * 9);
    L.scales.resize(conv.c_out);
    quantize_weight(conv.weight, conv.c_out, conv.c_in, L.smooth.data(), L.q.data(), L.scales.data());
    L.dynamic = kv.second.dynamic, L.act_scale = kv.second.act_scale;
    L.min_channels = kv.second.min_channels, L.min_size = kv.second.min_size;
  }
}

}  // namespace capi
}  // namespace anycost
