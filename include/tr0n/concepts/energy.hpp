#pragma once
/// \file
/// # Concept `Energy`: `E(z, c)`, low when `G(z)` satisfies condition `c`.
///
/// **Definition.** A type that opts in (`using tr0n_tag =
/// tr0n::energy_tag;` or `tr0n::enable_energy<T> = true`) and is callable on
/// a context (the library builds `tr0n::energy_context`, `tr0n/energies/context.hpp`):
/// `e(ctx) -> torch::Tensor` of shape `[B]`, one energy per sample.
/// `EnergyFor<E, Ctx>` checks the call against the context a sampler will
/// really build, so a term that needs a prior density (`latent_prior`) is
/// rejected at compile time for a generator whose prior has none.
///
/// **Laws.** Per-sample: the energy of sample `i` depends only on row `i` of
/// `z` and of the condition (so summing and differentiating gives per-sample
/// gradients in one backward pass). Differentiable in `z` through `ctx.x()`,
/// `ctx.features()` and `ctx.z()`. Lower is better. Copying is cheap.
///
/// Optional hook: `e.check_conditions(c, where)` is called once per `sample`
/// call, before any step, and throws when conditions `[N, C]` parse but make
/// no sense for this energy (`cross_entropy`: rows that are not
/// distributions). Sums forward it to their terms.
///
/// **Models.** `cross_entropy`, `neg_cosine`, `squared_distance`,
/// `latent_prior`, and weighted sums of them built with `*` and `+`
/// (`1.0 * neg_cosine{} + 0.1 * latent_prior{}`), composed at compile time.
///
/// **Rationale.** One call on a context, rather than `e(features, c)`, lets
/// latent-space terms and terms that re-run the encoder (augmentations) share
/// one signature, and lets a sum compute `f(G(z))` once.
#include <tr0n/concepts/prior.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/archetypes.hpp>

#include <torch/types.h>

#include <concepts>

namespace tr0n {
namespace detail {

template <class E>
concept energy_opted_in = enable_energy<E>;
}  // namespace detail

template <class E, class Ctx>
concept EnergyFor = detail::energy_opted_in<E> && std::copy_constructible<E> &&
                    requires(const E& e, const Ctx& ctx) {
                      { e(ctx) } -> std::same_as<torch::Tensor>;
                    };

template <class E>
concept Energy = EnergyFor<E, detail::archetype_energy_context>;

}  // namespace tr0n
