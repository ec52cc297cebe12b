// A small strict JSON reader (RFC 8259) for the safetensors header and the architecture record in
// its metadata: enough for those, with bounded nesting so that a hostile file cannot exhaust the
// stack. Errors are capi::Error(ANYCOST_E_FORMAT) naming the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace anycost {
namespace capi {

struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;       // every number
  bool is_integer = false; // the literal had no fraction or exponent and fits int64
  int64_t integer = 0;     // its value when is_integer
  std::string string;
  std::vector<Json> items;                            // Array
  std::vector<std::pair<std::string, Json>> members;  // Object, in file order, names unique

  // The member called `name` of an object, or nullptr (also for a non-object).
  const Json* find(const std::string& name) const;
  // "object", "string", ... (for messages).
  const char* type_name() const;
};

// Parses a whole JSON document (nothing but white space may follow the value); duplicate member
// names are an error. `what` names the text in messages ("safetensors header").
Json parse_json(const std::string& text, const std::string& what);

}  // namespace capi
}  // namespace anycost
