#pragma once
/// \file
/// # Concept `Prior`: the latent distribution p(z) of a generator.
///
/// **Definition.** `p.dim()` the latent width `d`, and
/// `p.sample(n, options)` returning `[n, d]` draws with the given dtype and device.
///
/// **Refinements.** `PriorWithDensity` adds `p.log_prob(z) -> [B]`, needed by
/// the `latent_prior` energy term; `BoxedPrior` adds `p.box() -> tr0n::box`, the
/// support's bounds, which the sampler clamps to.
///
/// **Laws.** `sample` follows the options it is given and draws through
/// `tr0n::random` (so a seeded sampler or training run is reproducible, and
/// runs in two threads do not share a stream);
/// `log_prob` is differentiable in `z` wherever it is finite; every draw lies
/// in `box()` when there is one.
///
/// **Models.** `standard_normal`, `truncated_normal`, `clamped_normal`, `uniform`.
///
/// **Rationale.** The prior is data, not a role, so it needs no opt-in: nothing
/// else has `dim` and `sample(n, options)` by accident.
#include <torch/types.h>

#include <concepts>
#include <cstdint>

namespace tr0n {

/// Closed support `[lo, hi]` of every latent coordinate.
struct box {
  double lo;
  double hi;
};

template <class P>
concept Prior = std::copy_constructible<P> &&
    requires(const P& p, int64_t n, torch::TensorOptions options) {
      { p.dim() } -> std::convertible_to<int64_t>;
      { p.sample(n, options) } -> std::same_as<torch::Tensor>;
    };

template <class P>
concept PriorWithDensity = Prior<P> && requires(const P& p, const torch::Tensor& z) {
  { p.log_prob(z) } -> std::same_as<torch::Tensor>;
};

template <class P>
concept BoxedPrior = Prior<P> && requires(const P& p) {
  { p.box() } -> std::same_as<tr0n::box>;
};

}  // namespace tr0n
