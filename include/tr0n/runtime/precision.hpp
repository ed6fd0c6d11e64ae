#pragma once
/// \file
/// The compute precision of the generator and the encoder. With `bf16` (or
/// `fp16`, CUDA only), G and f run under LibTorch's autocast: their matrix
/// products and convolutions take bfloat16 inputs, and what they return is
/// cast back to float32 at once. Latents, their gradients as applied, the
/// energies, the translator and the Langevin update stay in float32; only the
/// models' arithmetic is lower.
///
/// On a CPU, bfloat16 products run in oneDNN (MKL-DNN) on LibTorch's own
/// thread pool, not in OpenBLAS: use `thread_workload::convolutions` with
/// `configure_threads` (the `tr0n` tool does), so the cores go to that pool.
/// bfloat16 is fast only where the CPU has AVX512_BF16 (or AMX); elsewhere
/// LibTorch emulates it, slower than float32 (`cpu_has_bf16`).
///
/// Reproducibility: a seeded run gives the same result every time in a fresh
/// process. Within one process, a TorchScript model's first gradient under
/// autocast (LibTorch's profiling executor's first run) differs from later
/// ones by bfloat16 rounding (up to 4e-3 measured on an MLP), so a seeded run
/// repeated there can differ by that much the first time; float32 has no
/// such difference.
#include <tr0n/detail/check.hpp>

#include <ATen/autocast_mode.h>
#include <torch/types.h>
#include <torch/version.h>

#include <fstream>
#include <string>
#include <string_view>

namespace tr0n {

/// What G and f compute in.
enum class precision { fp32, bf16, fp16 };

inline const char* to_string(precision p) noexcept {
  switch (p) {
    case precision::bf16: return "bf16";
    case precision::fp16: return "fp16";
    default: return "fp32";
  }
}

/// `bf16`, `fp16` or `fp32`; throws, naming the word, for anything else.
inline precision parse_precision(std::string_view word) {
  if (word == "fp32") return precision::fp32;
  if (word == "bf16") return precision::bf16;
  if (word == "fp16") return precision::fp16;
  detail::fail("precision '", std::string(word), "': expected bf16, fp16 or fp32");
}

/// Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX-BF16, from
/// /proc/cpuinfo; false where that file is absent).
inline bool cpu_has_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string word;
  while (in >> word)
    if (word == "avx512_bf16" || word == "amx_bf16") return true;
  return false;
}

/// Throws, in one line, when `device` cannot run `p`: LibTorch's CPU autocast
/// runs bfloat16 only.
inline void check_precision(precision p, const torch::Device& device) {
  if (p == precision::fp16 && device.is_cpu())
    detail::fail("precision fp16 needs a CUDA device: on the CPU, LibTorch's autocast runs bf16 only");
}

namespace detail {

inline torch::ScalarType autocast_dtype(precision p) {
  return p == precision::fp16 ? torch::kHalf : torch::kBFloat16;
}

/// Autocast for one device until the end of the scope, as it was after.
/// Nothing at `fp32`.
class precision_scope {
 public:
  precision_scope(precision p, const torch::Device& device) : on_(p != precision::fp32), type_(device.type()) {
    if (!on_) return;
    was_enabled_ = enabled();
    was_dtype_ = dtype();
    set(true, autocast_dtype(p));
    at::autocast::increment_nesting();
  }
  ~precision_scope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set(was_enabled_, was_dtype_);
  }
  precision_scope(const precision_scope&) = delete;
  precision_scope& operator=(const precision_scope&) = delete;

 private:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  bool enabled() const { return at::autocast::is_autocast_enabled(type_); }
  torch::ScalarType dtype() const { return at::autocast::get_autocast_dtype(type_); }
  void set(bool on, torch::ScalarType t) const {
    at::autocast::set_autocast_enabled(type_, on);
    at::autocast::set_autocast_dtype(type_, t);
  }
#else
  bool enabled() const { return type_ == torch::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled(); }
  torch::ScalarType dtype() const {
    return type_ == torch::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
  }
  void set(bool on, torch::ScalarType t) const {
    if (type_ == torch::kCPU) {
      at::autocast::set_cpu_enabled(on);
      at::autocast::set_autocast_cpu_dtype(t);
    } else {
      at::autocast::set_enabled(on);
      at::autocast::set_autocast_gpu_dtype(t);
    }
  }
#endif
  bool on_;
  torch::DeviceType type_;
  bool was_enabled_ = false;
  torch::ScalarType was_dtype_ = torch::kBFloat16;
};

/// `module(input)` in precision `p`, returned as float32 (a no-op at fp32).
template <class Module>
torch::Tensor forward_in(precision p, Module& module, const torch::Tensor& input) {
  if (p == precision::fp32) return module.forward(input);
  precision_scope scope(p, input.device());
  return module.forward(input).to(torch::kFloat32);
}

}  // namespace detail
}  // namespace tr0n
