#pragma once
/// \file
/// # Concept `InitPolicy`: where Langevin chains start, and what they move.
///
/// **Definition.** For a sampler type `S`, a copyable `P` with
///  - `p.start(s, c)`: given the sampler and the conditions repeated once per
///    chain (`[M, C]`), returns the policy's state; `state.leaf` is the tensor
///    the Langevin update moves;
///  - `p.latent(state)`: the latents `[M, d]` the state stands for,
///    differentiable in `state.leaf`;
///  - `P::name`: the policy's name (`"prior"`, `"translator_sample"`, ...).
///
/// Optional hooks:
///  - `p.aux(state) -> torch::Tensor&` names a second tensor to differentiate,
///    and `p.update_aux(state, grad)` updates it after each step (the
///    mixture-hybrid start moves its logits with Adam this way);
///    `InitPolicyWithAux` checks for both.
///  - `P::needs_translator` is true when `start` uses the sampler's translator
///    (a `Translator`), and `P::needs_mixture` when it uses its components (a
///    `MixtureTranslator`). The sampler rejects a missing one at compile time.
///
/// **Laws.**
///  - `latent(start(s, c))` has one row per row of `c`, on `c`'s device and dtype.
///  - `state.leaf` lives in latent space (latents, or component means), so
///    clamping it into a box prior's support keeps `latent(state)` inside.
///  - Row `i` of the state depends only on row `i` of `c`, so a chain frozen
///    after a failure can be held exactly where it failed.
///  - Randomness goes through `tr0n::random`, so seeded runs are reproducible.
///
/// **Models.** `init::prior`, `init::translator_sample`, `init::translator_mode`,
/// `init::translator_mixture`, `init::best_of<N, Base>`.
///
/// **Rationale.** The start is the paper's whole argument (translator against
/// prior), so it is a policy of its own, independent of the step schedule and
/// the noise. A state with a leaf, rather than a bare tensor, lets a policy
/// such as the mixture hybrid move more than the latents while the sampler
/// keeps one loop for all.
#include <torch/types.h>

#include <concepts>
#include <string_view>
#include <type_traits>

namespace tr0n {

template <class P, class S>
concept InitPolicy = std::copy_constructible<P> && requires(P& p, S& s, const torch::Tensor& c) {
  { P::name } -> std::convertible_to<std::string_view>;
  { p.start(s, c).leaf } -> std::convertible_to<torch::Tensor>;
  { p.latent(p.start(s, c)) } -> std::same_as<torch::Tensor>;
};

template <class P, class State>
concept InitPolicyWithAux = requires(P& p, State& state, const torch::Tensor& grad) {
  { p.aux(state) } -> std::same_as<torch::Tensor&>;
  p.update_aux(state, grad);
};

template <class P>
inline constexpr bool needs_translator_v = requires { requires P::needs_translator; };

template <class P>
inline constexpr bool needs_mixture_v = requires { requires P::needs_mixture; };

}  // namespace tr0n
