#pragma once
// Private: argument checks shared by the sampler and the trainer. Each message
// names the argument, what was received and what was expected.
#include <torch/types.h>

#include <cstdint>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tr0n::detail {

template <class... Parts>
[[noreturn]] inline void fail(const Parts&... parts) {
  std::ostringstream os;
  os << "tr0n: ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

/// The informative line of an exception from the TorchScript runtime: its last
/// "...Error: ..." line (the interpreter puts a traceback first), else its first line.
inline std::string brief(const std::exception& e) {
  std::string what = e.what();
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) what = c10_error->what_without_backtrace();
  std::string first, error_line, line;
  std::istringstream lines(what);
  while (std::getline(lines, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (first.empty()) first = line;
    if (line.find("Error: ") != std::string::npos) error_line = line;
  }
  return error_line.empty() ? first : error_line;
}

/// `s` with every byte outside printable ASCII replaced by '?' (for names
/// and reasons quoted from untrusted files: one line, no control bytes).
inline std::string printable(std::string s) {
  for (auto& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) ch = '?';
  return s;
}

inline std::string shape_of(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

/// `t` is a defined float tensor of rank 2 with `width` columns.
inline void check_matrix(const torch::Tensor& t, std::string_view name, int64_t width,
                         std::string_view width_source) {
  if (!t.defined()) fail(name, ": expected a tensor [N, ", width, "], got an undefined tensor");
  if (t.dim() != 2)
    fail(name, ": expected a tensor of rank 2 [N, ", width, "], got shape ", shape_of(t));
  if (t.size(1) != width)
    fail(name, ": expected width ", width, " (", width_source, "), got shape ", shape_of(t));
  if (t.size(0) == 0) fail(name, ": expected at least one row, got shape ", shape_of(t));
  if (!t.is_floating_point())
    fail(name, ": expected a floating-point tensor, got dtype ", t.dtype());
}

/// Synchronises once, at the call, never inside a run.
inline void check_finite(const torch::Tensor& t, std::string_view name) {
  if (!torch::isfinite(t).all().item<bool>())
    fail(name, ": expected finite values, got ",
         (~torch::isfinite(t)).sum().item<int64_t>(), " non-finite entries in a tensor of shape ",
         shape_of(t));
}

inline void check_same_device(const torch::Tensor& a, std::string_view a_name, const torch::Tensor& b,
                              std::string_view b_name) {
  if (a.device() != b.device())
    fail(a_name, " is on ", a.device(), " but ", b_name, " is on ", b.device(),
         ": expected both on the same device");
}

inline void check_positive(int64_t v, std::string_view name) {
  if (v <= 0) fail(name, ": expected a value > 0, got ", v);
}

/// Remembers one tensor, as it was: `same(t)` is true while `t` is that
/// tensor and has not been written to since. The weak reference keeps its
/// address from being reused; it never keeps the tensor's memory alive.
class seen_tensor {
 public:
  bool same(const torch::Tensor& t) const {
    return t.defined() && !seen_.expired() && seen_.lock().get() == t.unsafeGetTensorImpl() &&
           version_ == t._version();
  }
  void remember(const torch::Tensor& t) {
    seen_ = weak_type(t.getIntrusivePtr());
    version_ = t._version();
  }

 private:
  using weak_type = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  weak_type seen_{c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>()};
  uint32_t version_ = 0;
};

}  // namespace tr0n::detail
