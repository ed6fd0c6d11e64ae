#pragma once
/// \file
/// # Concept `InitPolicy`: where Langevin chains start, and what they move.
///
/// **Minimal definition.** For a sampler type `S`:
///  - `p.start(s, c)`: given the sampler and the conditions repeated once per
///    chain (`[M, C]`), returns the policy's state; `state.leaf` is the tensor
///    the Langevin update moves;
///  - `p.latent(state)`: the latents `[M, d]` the state stands for,
///    differentiable in `state.leaf`;
///  - `P::name`: the policy's name (`"prior"`, `"translator_sample"`, ...).
///
/// **Optional hooks.** `p.aux(state) -> torch::Tensor&` names a second tensor
/// to differentiate; `p.update_aux(state, grad)` updates it after each step
/// (the mixture-hybrid start moves its logits with Adam this way).
/// `P::needs_translator` is true when `start` uses the sampler's translator.
///
/// **Laws.** `latent(start(s, c))` has one row per row of `c`, on `c`'s device and dtype.
///
/// **Models.** `init::prior`, `init::translator_sample`, `init::translator_mixture`,
/// `init::best_of<N, Base>`.
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

}  // namespace tr0n
