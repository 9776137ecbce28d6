// The one exception type the kernels throw; the binding turns it into TypeError / RangeError / MiniVllmError.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mvllm {

enum class ErrorKind {
  Type,          // wrong kind of argument: dtype, device, not a tensor, disposed
  Range,         // right kind, wrong value: shape, size, index, eps
  Cuda,          // a CUDA runtime error
  OutOfMemory,   // host or device allocation failed
  DeviceAssert,  // a kernel found bad data (e.g. a position out of range) on the device
  Unsupported,   // a backend or feature this build does not have
};

inline const char* error_code(ErrorKind k) {
  switch (k) {
    case ErrorKind::Type: return "ERR_INVALID_ARG_TYPE";
    case ErrorKind::Range: return "ERR_OUT_OF_RANGE";
    case ErrorKind::Cuda: return "ERR_CUDA";
    case ErrorKind::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorKind::DeviceAssert: return "ERR_DEVICE_ASSERT";
    case ErrorKind::Unsupported: return "ERR_UNSUPPORTED";
  }
  return "ERR_UNKNOWN";
}

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, Args&&... args) {
  throw Error(kind, str(std::forward<Args>(args)...));
}

}  // namespace mvllm
