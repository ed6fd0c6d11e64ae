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
/// Autocast casts a model's weights at every call. A model that keeps its own
/// copy of its weights in the lower precision saves that work: it provides
/// `forward(x, tr0n::precision)` beside `forward(x)`, and the library calls it,
/// under the same autocast, whenever the precision is not fp32. The TorchScript
/// adapters, `rescaled_generator` and `preprocessed_encoder` do;
/// `lowered_copies` and `lower_matrices` build such a copy. Lowering only the
/// matrices (float parameters of two or more dimensions) that autocast would
/// cast anyway keeps the results bit for bit those of autocast when every
/// matrix feeds a product or a convolution (MLPs, CNNs); a matrix used
/// otherwise (a positional embedding added to activations) is then rounded to
/// the lower precision where autocast would have kept it in float32.
///
/// Reproducibility: a seeded run gives the same result every time in a fresh
/// process. Within one process, a TorchScript model's first gradient under
/// autocast (LibTorch's profiling executor's first run) differs from later
/// ones by bfloat16 rounding (up to 4e-3 measured on an MLP), so a seeded run
/// repeated there can differ by that much the first time; float32 has no
/// such difference.
#include <tr0n/detail/check.hpp>

#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <array>
#include <concepts>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
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

/// A model that picks its own weights for a precision (see the file's comment).
template <class M>
concept takes_precision = requires(M& m, const torch::Tensor& x, precision p) {
  { m.forward(x, p) } -> std::convertible_to<torch::Tensor>;
};

/// `model.forward(x, p)` where the model takes a precision, else `model.forward(x)`:
/// what a wrapper calls on the model it wraps.
template <class M>
torch::Tensor forward_with(M& model, const torch::Tensor& x, precision p) {
  if constexpr (takes_precision<M>) {
    if (p != precision::fp32) return model.forward(x, p);
  }
  return model.forward(x);
}

}  // namespace detail

/// Casts `module`'s float parameters of two or more dimensions to `dtype`, in
/// place (`module`: anything whose `parameters()` lists tensors, a
/// `torch::nn::Module` or a `torch::jit::Module`). Use it on a copy.
template <class Module>
void lower_matrices(Module& module, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (auto p : module.parameters())
    if (p.dim() >= 2 && p.scalar_type() == torch::kFloat32) p.set_data(p.to(dtype));
}

/// Copies `from`'s parameters and buffers into `to` (a module of the same
/// architecture), its matrices in `dtype` (`lower_matrices`), and its training
/// mode: how a `torch::nn::Module` makes its own lower-precision copy.
inline void copy_lowered(const torch::nn::Module& from, torch::nn::Module& to, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  auto parameters = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().set_data(parameters[p.key()].clone());
  auto buffers = from.named_buffers();
  for (auto& b : to.named_buffers()) b.value().set_data(buffers[b.key()].clone());
  lower_matrices(to, dtype);
  to.train(from.is_training());
}

/// A model's copies in bf16 and fp16, each made on first use by `make(dtype)`
/// (a copy of the model with `lower_matrices` applied) and shared by copies of
/// the owner; safe to call from several threads. The model must not change
/// after its copy is made: models are frozen while they sample.
template <class Model>
class lowered_copies {
 public:
  template <class Make>
  Model& get(precision p, Make&& make) {
    const auto i = p == precision::fp16 ? 1 : 0;
    auto& s = *slots_;
    std::call_once(s.once[i], [&] { s.copy[i].emplace(make(detail::autocast_dtype(p))); });
    return *s.copy[i];
  }
  /// The copy for `p` if it was made, else null (not while another thread makes it).
  Model* made(precision p) {
    auto& copy = slots_->copy[p == precision::fp16 ? 1 : 0];
    return copy ? &*copy : nullptr;
  }

 private:
  struct slots {
    std::array<std::once_flag, 2> once;
    std::array<std::optional<Model>, 2> copy;
  };
  std::shared_ptr<slots> slots_ = std::make_shared<slots>();
};

namespace detail {

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
  return forward_with(module, input, p).to(torch::kFloat32);
}

}  // namespace detail
}  // namespace tr0n
