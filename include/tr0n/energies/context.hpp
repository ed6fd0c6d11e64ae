#pragma once
/// \file
/// What an energy term sees: the latents, the generated data, the target
/// conditions, the prior and the encoder. Features `f(x)` are computed on first
/// use and shared by every term of a weighted sum, so `neg_cosine + latent_prior`
/// runs the encoder once; a term that needs `f` on other data (augmented copies,
/// say) calls `encode`. The encoder runs in the run's compute precision
/// (`tr0n/runtime/precision.hpp`); its features are float32 either way.
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/runtime/precision.hpp>

#include <torch/types.h>

namespace tr0n {

template <class P, class F>
class energy_context {
 public:
  energy_context(const torch::Tensor& z, const torch::Tensor& x, const torch::Tensor& condition,
                 const P& prior, F& encoder, precision compute = precision::fp32)
      : z_(z), x_(x), condition_(condition), prior_(prior), encoder_(encoder), compute_(compute) {}

  /// Latents `[B, d]`.
  const torch::Tensor& z() const noexcept { return z_; }
  /// Generated data `G(z)`.
  const torch::Tensor& x() const noexcept { return x_; }
  /// Target conditions, one row per sample: `[B, C]` (or `[B]` class labels).
  const torch::Tensor& condition() const noexcept { return condition_; }
  const P& prior() const noexcept { return prior_; }

  /// `f(x)`, computed once.
  const torch::Tensor& features() const {
    if (!features_.defined()) features_ = encode(x_);
    return features_;
  }

  /// `f` applied to any data batch.
  torch::Tensor encode(const torch::Tensor& data) const {
    return detail::forward_in(compute_, detail::unwrap(encoder_), data);
  }

 private:
  const torch::Tensor& z_;
  const torch::Tensor& x_;
  const torch::Tensor& condition_;
  const P& prior_;
  F& encoder_;
  precision compute_;
  mutable torch::Tensor features_;
};

}  // namespace tr0n
