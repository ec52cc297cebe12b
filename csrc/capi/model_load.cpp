// Loading a generator file: the format tag and architecture from the safetensors metadata (as
// anycost/models/stylegan2/checkpoints.py writes them, or anycost/compression/files.py for a compressed one),
// every tensor name and shape checked against the architecture (as Python's check_state: no missing, no
// unexpected key; an encoded weight's parts by compressed.cpp), the weights read (or decoded) into one float32
// block, and the layers pointed into it.
#include <cmath>
#include <map>
#include <set>

#include "compressed.h"
#include "error.h"
#include "json.h"
#include "model.h"
#include "model_build.h"
#include "safetensors.h"

namespace anycost {
namespace capi {

namespace {

// What `save_generator` writes in the metadata of a StyleGAN2 generator file, and of a compressed one.
const char* const kFormat = "anycost-generator";
const char* const kCompressedFormat = "anycost-compressed-generator";
const char* const kFormatVersion = "1";  // both formats'

int int_field(const Json& v, const std::string& name) {
  if (v.type != Json::Type::Number || !v.is_integer || v.integer < 1 || v.integer > (1 << 30))
    throw Error(ANYCOST_E_FORMAT, "architecture field " + name + " must be a positive integer");
  return static_cast<int>(v.integer);
}

double number_field(const Json& v, const std::string& name) {
  if (v.type != Json::Type::Number) throw Error(ANYCOST_E_FORMAT, "architecture field " + name + " must be a number");
  return v.number;
}

// GeneratorArch.from_dict: known fields only, the dataclass defaults, the same checks.
Arch parse_arch(const std::string& text) {
  const Json j = parse_json(text, "architecture metadata");
  if (j.type != Json::Type::Object) throw Error(ANYCOST_E_FORMAT, "the architecture metadata is not a JSON object");
  Arch a;
  bool has_resolution = false;
  for (const auto& f : j.members) {
    const std::string& k = f.first;
    if (k == "resolution") a.resolution = int_field(f.second, k), has_resolution = true;
    else if (k == "channel_multiplier") a.channel_multiplier = number_field(f.second, k);
    else if (k == "channel_max") a.channel_max = int_field(f.second, k);
    else if (k == "style_dim") a.style_dim = int_field(f.second, k);
    else if (k == "n_mlp") a.n_mlp = int_field(f.second, k);
    else if (k == "lr_mlp") a.lr_mlp = number_field(f.second, k);
    else throw Error(ANYCOST_E_FORMAT, "unknown generator architecture field " + k);
  }
  if (!has_resolution) throw Error(ANYCOST_E_FORMAT, "the architecture metadata lacks the resolution");
  if (a.resolution < 8 || a.resolution > 1024 || n_layers(a.resolution) < 0)
    throw Error(ANYCOST_E_FORMAT, "resolution must be a power of two between 8 and 1024, got " +
                                      std::to_string(a.resolution));
  if (!(a.channel_multiplier > 0) || !std::isfinite(a.channel_multiplier))
    throw Error(ANYCOST_E_FORMAT, "channel_multiplier must be positive");
  if (a.channels(a.resolution) < 1)
    throw Error(ANYCOST_E_FORMAT, "channel_multiplier leaves no channel at " + std::to_string(a.resolution) + " px");
  return a;
}

std::string shape_text(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// check_state: the same keys, the same shapes (an encoded weight is stored as its parts, "<key>:<part>").
void check_tensors(const SafetensorsFile& f, const std::map<std::string, Shape>& want,
                   const std::map<std::string, Encoding>& encoded) {
  for (const auto& kv : want)
    if (!encoded.count(kv.first) && !f.tensors().count(kv.first))
      throw Error(ANYCOST_E_FORMAT, "missing key '" + kv.first + "'");
  for (const auto& kv : f.tensors())
    if (kv.first.find(':') == std::string::npos && (!want.count(kv.first) || encoded.count(kv.first)))
      throw Error(ANYCOST_E_FORMAT, "unexpected key '" + kv.first + "'");
  check_encoded_parts(f, encoded);
  for (const auto& kv : want) {
    if (encoded.count(kv.first)) continue;
    const Shape& got = f.tensors().at(kv.first).shape;
    if (got != kv.second)
      throw Error(ANYCOST_E_FORMAT, "'" + kv.first + "' has shape " + shape_text(got) + ", expected " +
                                        shape_text(kv.second));
  }
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path) {
  SafetensorsFile f(path);
  auto fmt = f.metadata().find("format");
  if (fmt == f.metadata().end() || (fmt->second != kFormat && fmt->second != kCompressedFormat))
    throw Error(ANYCOST_E_FORMAT,
                path + ": not an anycost generator file (format=" +
                    (fmt == f.metadata().end() ? std::string("None") : "'" + fmt->second + "'") +
                    "); libanycost reads StyleGAN2 generators ('" + kFormat + "', '" + kCompressedFormat + "')");
  const bool compressed = fmt->second == kCompressedFormat;
  auto version = f.metadata().find("format_version");
  if (version == f.metadata().end() || version->second != kFormatVersion)
    throw Error(ANYCOST_E_FORMAT, path + ": unsupported generator format version '" +
                                      (version == f.metadata().end() ? std::string("None") : version->second) + "'");
  auto model = std::make_unique<Model>();
  Model& m = *model;
  std::map<std::string, Shape> want;
  std::map<std::string, Encoding> encoded;
  try {
    auto arch = f.metadata().find("arch");
    if (arch == f.metadata().end()) throw Error(ANYCOST_E_FORMAT, "no architecture in the metadata");
    m.arch = parse_arch(arch->second);
    for (int i = 0; i < m.arch.n_styles(); ++i) m.full_widths.push_back(m.arch.channels(layer_resolution(i)));
    want = expected_tensors(m.arch, m.full_widths);
    if (compressed) encoded = read_encodings(f, want);
    check_tensors(f, want, encoded);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
  // One block for every tensor, each at a multiple of 16 floats (sizes are bounded by the file's).
  std::map<std::string, size_t> offset;
  size_t total = 0;
  for (const auto& kv : want) {
    offset[kv.first] = total;
    size_t count = 1;
    for (int64_t d : kv.second) count *= static_cast<size_t>(d);
    total += (count + 15) / 16 * 16;
  }
  m.storage.assign(total, 0.f);
  for (const auto& kv : offset) {
    float* const dst = m.storage.data() + kv.second;
    const auto e = encoded.find(kv.first);
    if (e == encoded.end()) {
      f.read_f32(kv.first, dst);
      continue;
    }
    try {
      decode_weight(f, kv.first, e->second, want.at(kv.first), dst);
    } catch (const Error& err) {
      throw Error(err.code(), path + ": " + err.what());
    }
  }
  for (int i = 1; i <= m.arch.n_mlp; ++i) {  // Python adds bias * lr_mul (float32) on every call
    float* b = m.storage.data() + offset["style." + std::to_string(i) + ".bias"];
    for (int o = 0; o < m.arch.style_dim; ++o) b[o] *= static_cast<float>(m.arch.lr_mlp);
  }
  const auto at = [&](const std::string& name) -> const float* { return m.storage.data() + offset.at(name); };
  build_mapping(m, at);
  build_synthesis(m, at);
  for (StyledLayer& L : m.convs) L.weight_id = cpu::new_weight_id();  // the file's weights never change
  try {
    build_int8_layers(f, encoded, m);
  } catch (const Error& err) {
    throw Error(err.code(), path + ": " + err.what());
  }
  return model;
}

}  // namespace capi
}  // namespace anycost
