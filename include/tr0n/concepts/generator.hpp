#pragma once
/// \file
/// # Concept `Generator`: the pre-trained unconditional model `G`.
///
/// **Definition.** A type that opts in (`using tr0n_tag =
/// tr0n::generator_tag;` or `tr0n::enable_generator<T> = true`) with
///  - `g.forward(z)`: latents `[B, d]` to data `[B, ...]`;
///  - `g.prior()`: its latent distribution, a model of `Prior` with `dim() == d`.
///
/// A TORCH_MODULE holder models `Generator` when the module it holds does.
///
/// **Laws.** `forward` is differentiable in `z` (the sampler takes gradients
/// through it); it keeps the batch size; it runs on the device and dtype of `z`.
/// The generator's own parameters are never updated by tr0n.
///
/// **Models.** Any user module that opts in; `tr0n::generator_fn` (from
/// `make_generator(callable, prior)`) for a plain callable.
///
/// **Rationale.** The prior lives with the generator because it is part of
/// what the generator was trained on: a BigGAN expects truncated latents, a VAE
/// decoder standard normal ones. Opt-in, because `Encoder` has the same shape.
#include <tr0n/concepts/prior.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/unwrap.hpp>

#include <torch/types.h>

#include <concepts>
#include <type_traits>
#include <utility>

namespace tr0n {
namespace detail {
template <class G>
concept generator_opted_in = enable_generator<G>;

template <class G>
concept generator_has_forward = requires(G& g, const torch::Tensor& z) {
  { g.forward(z) } -> std::convertible_to<torch::Tensor>;
};

template <class G>
concept generator_has_prior = requires(const G& g) {
  requires Prior<std::remove_cvref_t<decltype(g.prior())>>;
};
}  // namespace detail

template <class G>
concept Generator = detail::generator_opted_in<detail::unwrapped_t<G>> &&
                    detail::generator_has_forward<detail::unwrapped_t<G>> &&
                    detail::generator_has_prior<detail::unwrapped_t<G>>;

/// The prior type of generator `G`.
template <Generator G>
using prior_t = std::remove_cvref_t<decltype(std::declval<const detail::unwrapped_t<G>&>().prior())>;

}  // namespace tr0n
