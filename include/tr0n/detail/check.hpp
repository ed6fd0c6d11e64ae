#pragma once
// Private: argument checks shared by the sampler and the trainer. Each message
// names the argument, what was received and what was expected.
#include <tr0n/errors.hpp>

#include <torch/types.h>

#include <cstdint>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tr0n::detail {

// The public helpers (tr0n/errors.hpp), under the names the library's code uses.
using tr0n::fail;
using tr0n::printable;
inline std::string brief(const std::exception& e) { return tr0n::error_line(e); }
inline std::string shape_of(const torch::Tensor& t) { return tr0n::shape_string(t); }

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
