// The one error type of libanycost's internals: an ANYCOST_E_* code and a one-line message. The C
// entry points (api.cpp) turn it, and any other exception, into a return code and the `err` text.
#pragma once

#include <stdexcept>
#include <string>

#include "anycost.h"

namespace anycost {
namespace capi {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

}  // namespace capi
}  // namespace anycost
