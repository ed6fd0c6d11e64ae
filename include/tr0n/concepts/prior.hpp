#pragma once
/// \file
/// # Concept `Prior`: the latent distribution p(z) of a generator.
///
/// **Definition.** `p.dim()` the latent width `d`, and
/// `p.sample(n, options)` returning `[n, d]` draws with the given dtype and device.
///
/// **Refinements.** `PriorWithDensity` adds `p.log_prob(z) -> [B]`, needed by
/// the `latent_prior` energy term; `BoxedPrior` adds `p.box() -> tr0n::box`, the
/// support's bounds, which the sampler clamps to; `CoordinateBoxedPrior` adds
/// `p.bounds() -> tr0n::box_bounds`, bounds per coordinate (a joint prior whose
/// parts have different boxes), which the sampler clamps to likewise;
/// `PartitionedPrior` adds `p.parts()`, the widths of a latent that is the
/// concatenation of several inputs of the generator (BigGAN's z and class
/// embedding), which `latent_parts` reads.
///
/// **Laws.** `sample` follows the options it is given and draws through
/// `tr0n::random` (so a seeded sampler or training run is reproducible, and
/// runs in two threads do not share a stream);
/// `log_prob` is differentiable in `z` wherever it is finite; every draw lies
/// in `box()` when there is one.
///
/// **Models.** `standard_normal`, `truncated_normal`, `clamped_normal`, `uniform`,
/// `codebook_prior`, `joint_prior`.
///
/// **Rationale.** The prior is data, not a role, so it needs no opt-in: nothing
/// else has `dim` and `sample(n, options)` by accident.
#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <vector>

namespace tr0n {

/// Closed support `[lo, hi]` of every latent coordinate.
struct box {
  double lo;
  double hi;
};

/// Per-coordinate closed support: `lo` and `hi` are float64 CPU tensors `[d]`,
/// infinite where a coordinate is free.
struct box_bounds {
  torch::Tensor lo;
  torch::Tensor hi;
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

template <class P>
concept CoordinateBoxedPrior = Prior<P> && requires(const P& p) {
  { p.bounds() } -> std::same_as<tr0n::box_bounds>;
};

template <class P>
concept PartitionedPrior = Prior<P> && requires(const P& p) {
  { p.parts() } -> std::convertible_to<std::vector<int64_t>>;
};

/// The widths of the generator inputs a latent of `p` is cut into, in order:
/// `p.parts()` for a partitioned prior, else one part of `p.dim()`.
template <Prior P>
std::vector<int64_t> latent_parts(const P& p) {
  if constexpr (PartitionedPrior<P>) {
    return p.parts();
  } else {
    return {static_cast<int64_t>(p.dim())};
  }
}

}  // namespace tr0n
