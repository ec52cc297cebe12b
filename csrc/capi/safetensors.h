// Reading a .safetensors file: an 8-byte little-endian header length, a JSON header naming every
// tensor (dtype, shape, byte range in the data section) plus an optional "__metadata__" object of
// strings, then the data. The header is checked completely on open (sizes, byte ranges inside the
// file, no overflow), so a truncated or corrupt file fails there with a message, before any tensor
// is read. Tensors are read as float32 (F16, BF16 and F64 converted, as torch's load_state_dict into
// a float32 model does).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace anycost {
namespace capi {

struct TensorInfo {
  std::string dtype;           // "F32", "F16", "BF16", "F64", ... as stored
  std::vector<int64_t> shape;  // may be empty (a scalar)
  uint64_t begin = 0, end = 0; // byte range in the data section
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Opens and checks `path`: capi::Error with ANYCOST_E_IO (missing, unreadable) or ANYCOST_E_FORMAT.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }

  // Reads tensor `name` into dst[0 .. numel) as float32; ANYCOST_E_FORMAT for a non-floating dtype or
  // a NaN / infinite value, ANYCOST_E_IO for a failed read.
  void read_f32(const std::string& name, float* dst) const;
  // The bytes of tensor `name`, whose dtype must be `dtype` (a 1-byte one: "U8", "I8"); ANYCOST_E_FORMAT
  // naming both dtypes otherwise, ANYCOST_E_IO for a failed read.
  std::vector<unsigned char> read_bytes(const std::string& name, const std::string& dtype) const;

 private:
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
  uint64_t data_start_ = 0;  // 8 + header length
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorInfo> tensors_;

  void parse_header(const std::string& header, uint64_t data_bytes);
};

}  // namespace capi
}  // namespace anycost
