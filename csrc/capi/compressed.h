// Reading a compressed generator file (format "anycost-compressed-generator", anycost/compression/files.py): the
// encodings in its metadata, each encoded weight's stored parts checked and decoded to the dense float32 weight
// the Python model computes with (sparse: mask + values; k-means: codebook + packed indices; int8: q x scale /
// smooth), and the int8 layers of a model whose convs run int8 (quantised from those dense weights).
#pragma once

#include <map>
#include <string>

#include "model.h"
#include "model_build.h"
#include "safetensors.h"

namespace anycost {
namespace capi {

// One weight's entry of the "encodings" metadata.
struct Encoding {
  std::string kind;           // "sparse", "kmeans" or "int8"
  int bits = 0;               // k-means index bits (1..8)
  bool runs_int8 = false;     // an int8 weight, or a k-means one with an "int8" entry
  bool dynamic = true;        // act_scale null: each sample's own activation scale
  float act_scale = 1.f;
  int min_channels = 1, min_size = 1;
};

// The encodings of file `f` by weight name, checked against the generator's tensors `want` (an unknown weight, a
// kind this library does not read or a malformed entry: capi::Error(ANYCOST_E_FORMAT) naming it).
std::map<std::string, Encoding> read_encodings(const SafetensorsFile& f, const std::map<std::string, Shape>& want);

// Checks that every "<key>:<part>" tensor of f is a part of an encoded weight (capi::Error naming the first that is
// not); whether each part is there and well formed, decode_weight checks.
void check_encoded_parts(const SafetensorsFile& f, const std::map<std::string, Encoding>& encodings);

// Decodes weight `key` of shape `shape` into dst (its numel floats); capi::Error naming the part that is wrong.
void decode_weight(const SafetensorsFile& f, const std::string& key, const Encoding& e, const Shape& shape,
                   float* dst);

// Fills m.int8 for the convs whose weights run int8 (m's layers already built over the decoded weights).
void build_int8_layers(const SafetensorsFile& f, const std::map<std::string, Encoding>& encodings, Model& m);

}  // namespace capi
}  // namespace anycost
