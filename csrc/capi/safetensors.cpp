// Checked reading of .safetensors files (see safetensors.h).
#include "safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "error.h"
#include "json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libanycost reads safetensors (little-endian) data in place: big-endian hosts are not supported"
#endif

namespace anycost {
namespace capi {

namespace {

// The safetensors library refuses headers above 100 MB; so do we (a corrupt length field would
// otherwise make us allocate whatever it says).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

// Bytes per element of the safetensors dtypes; 0 for an unknown name.
int dtype_size(const std::string& dtype) {
  static const std::map<std::string, int> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) {  // inf / NaN
    uint32_t bits = sign | 0x7F800000u | (mant << 13);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float f = std::ldexp(float(mant), -24);
    return sign ? -f : f;
  }
  uint32_t bits = sign | (uint32_t(exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Converts `count` elements of `dtype` (F64, F16 or BF16) at `src` to float32.
void convert(const std::string& dtype, const unsigned char* src, int64_t count, float* dst) {
  if (dtype == "F64") {
    for (int64_t i = 0; i < count; ++i) {
      double d;
      std::memcpy(&d, src + 8 * i, 8);
      dst[i] = static_cast<float>(d);
    }
    return;
  }
  const bool half = dtype == "F16";
  for (int64_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = half ? half_to_float(h) : bf16_to_float(h);
  }
}

int64_t nonneg_int(const Json& v, const std::string& what) {
  if (v.type != Json::Type::Number || !v.is_integer || v.integer < 0)
    throw Error(ANYCOST_E_FORMAT, what + " must be a non-negative integer");
  return v.integer;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // overflow ruled out when the header was checked
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw Error(ANYCOST_E_IO, path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(ANYCOST_E_IO, path + ": not a regular file");
  file_.reset(std::fopen(path.c_str(), "rb"));
  if (!file_) throw Error(ANYCOST_E_IO, path + ": cannot open: " + std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char head[8];
  if (size < 10 || std::fread(head, 1, 8, file_.get()) != 8)
    throw Error(ANYCOST_E_FORMAT, path + ": not a safetensors file (" + std::to_string(size) + " bytes: too short)");
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | head[k];
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    throw Error(ANYCOST_E_FORMAT, path + ": not a safetensors file, or a truncated one (its first 8 bytes give a " +
                                      std::to_string(header_len) + "-byte header; the file has " +
                                      std::to_string(size) + " bytes)");
  std::string header(header_len, '\0');
  if (std::fread(&header[0], 1, header_len, file_.get()) != header_len)
    throw Error(ANYCOST_E_IO, path + ": read error in the header");
  if (header.empty() || header[0] != '{')
    throw Error(ANYCOST_E_FORMAT, path + ": not a safetensors file (the header is not a JSON object)");
  data_start_ = 8 + header_len;
  try {
    parse_header(header, size - data_start_);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

void SafetensorsFile::parse_header(const std::string& header, uint64_t data_bytes) {
  const Json root = parse_json(header, "safetensors header");
  if (root.type != Json::Type::Object) throw Error(ANYCOST_E_FORMAT, "the safetensors header is not a JSON object");
  for (const auto& member : root.members) {
    const std::string& name = member.first;
    const Json& v = member.second;
    if (name == "__metadata__") {
      if (v.type != Json::Type::Object) throw Error(ANYCOST_E_FORMAT, "__metadata__ is not an object");
      for (const auto& kv : v.members) {
        if (kv.second.type != Json::Type::String)
          throw Error(ANYCOST_E_FORMAT, "metadata \"" + kv.first + "\" is not a string");
        metadata_[kv.first] = kv.second.string;
      }
      continue;
    }
    const std::string what = "tensor \"" + name + "\"";
    const Json* dtype = v.find("dtype");
    const Json* shape = v.find("shape");
    const Json* offsets = v.find("data_offsets");
    if (!dtype || dtype->type != Json::Type::String || !shape || shape->type != Json::Type::Array || !offsets ||
        offsets->type != Json::Type::Array || offsets->items.size() != 2)
      throw Error(ANYCOST_E_FORMAT, what + " lacks a dtype string, a shape list or two data_offsets");
    TensorInfo t;
    t.dtype = dtype->string;
    const int elem = dtype_size(t.dtype);
    if (elem == 0) throw Error(ANYCOST_E_FORMAT, what + " has an unknown dtype " + t.dtype);
    int64_t numel = 1;
    for (const Json& d : shape->items) {
      t.shape.push_back(nonneg_int(d, what + " shape entry"));
      if (__builtin_mul_overflow(numel, t.shape.back(), &numel))
        throw Error(ANYCOST_E_FORMAT, what + " has an impossible shape");
    }
    t.begin = static_cast<uint64_t>(nonneg_int(offsets->items[0], what + " offset"));
    t.end = static_cast<uint64_t>(nonneg_int(offsets->items[1], what + " offset"));
    int64_t bytes = 0;
    if (__builtin_mul_overflow(numel, int64_t(elem), &bytes) || t.begin > t.end ||
        t.end - t.begin != static_cast<uint64_t>(bytes))
      throw Error(ANYCOST_E_FORMAT, what + ": its byte range [" + std::to_string(t.begin) + ", " +
                                        std::to_string(t.end) + ") does not match its dtype and shape");
    if (t.end > data_bytes)
      throw Error(ANYCOST_E_FORMAT, "truncated file: " + what + " ends at data byte " + std::to_string(t.end) +
                                        ", the file has " + std::to_string(data_bytes) + " bytes of data");
    tensors_.emplace(name, std::move(t));
  }
}

void SafetensorsFile::read_f32(const std::string& name, float* dst) const {
  const TensorInfo& t = tensors_.at(name);
  if (t.dtype != "F32" && t.dtype != "F16" && t.dtype != "BF16" && t.dtype != "F64")
    throw Error(ANYCOST_E_FORMAT, path_ + ": tensor \"" + name + "\" has dtype " + t.dtype +
                                      ", expected a floating-point tensor");
  const int elem = dtype_size(t.dtype);
  if (fseeko(file_.get(), static_cast<off_t>(data_start_ + t.begin), SEEK_SET) != 0)
    throw Error(ANYCOST_E_IO, path_ + ": seek error");
  const int64_t total = t.numel();
  if (t.dtype == "F32") {  // straight into place
    if (std::fread(dst, 4, static_cast<size_t>(total), file_.get()) != static_cast<size_t>(total))
      throw Error(ANYCOST_E_IO, path_ + ": read error in tensor \"" + name + "\"");
  } else {  // through a bounded buffer
    std::vector<unsigned char> buf(1 << 20);
    const int64_t per = static_cast<int64_t>(buf.size()) / elem;
    for (int64_t done = 0; done < total; done += per) {
      const int64_t count = std::min(per, total - done);
      if (std::fread(buf.data(), static_cast<size_t>(elem), static_cast<size_t>(count), file_.get()) !=
          static_cast<size_t>(count))
        throw Error(ANYCOST_E_IO, path_ + ": read error in tensor \"" + name + "\"");
      convert(t.dtype, buf.data(), count, dst + done);
    }
  }
  for (int64_t i = 0; i < total; ++i)
    if (!std::isfinite(dst[i]))
      throw Error(ANYCOST_E_FORMAT, path_ + ": tensor \"" + name + "\" holds NaN or infinite values");
}

std::vector<unsigned char> SafetensorsFile::read_bytes(const std::string& name, const std::string& dtype) const {
  const TensorInfo& t = tensors_.at(name);
  if (t.dtype != dtype)
    throw Error(ANYCOST_E_FORMAT, path_ + ": tensor \"" + name + "\" has dtype " + t.dtype + ", expected " + dtype);
  std::vector<unsigned char> out(static_cast<size_t>(t.end - t.begin));
  if (fseeko(file_.get(), static_cast<off_t>(data_start_ + t.begin), SEEK_SET) != 0 ||
      std::fread(out.data(), 1, out.size(), file_.get()) != out.size())
    throw Error(ANYCOST_E_IO, path_ + ": read error in tensor \"" + name + "\"");
  return out;
}

}  // namespace capi
}  // namespace anycost
