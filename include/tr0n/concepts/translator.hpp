#pragma once
/// \file
/// # Concepts `Translator`, `MixtureTranslator`, `TrainableTranslator`: the amortised inverse `q(z | c)`.
///
/// **Definition.** `Translator<T>`: a type that opts in (`using tr0n_tag =
/// tr0n::translator_tag;` or `tr0n::enable_translator<T> = true`) with
///  - `t.log_prob(z, c)`: `[B, d]`, `[B, C]` to `[B]`;
///  - `t.sample(c, n)`: `[B, C]` to `[B * n, d]`, condition-major (row
///    `i * n + j` is draw `j` for condition `i`);
///  - `t.latent_dim()` and `t.condition_dim()`.
///
/// Refinements, each required only by what needs it:
///  - `MixtureTranslator<T>` adds `t.mixture(c)`, the Gaussian-mixture
///    parameters (`mixture_params`), which the starts that work with
///    components need (`init::translator_mode`, `init::translator_mixture`).
///  - `TrainableTranslator<T>` adds `parameters()` and `train(bool)` (a
///    `torch::nn::Module`), which `train_translator` optimises.
///
/// Optional hook: `t.features_to_conditions(f)` maps encoder features into the
/// translator's condition space (see `tr0n/conditions/transform.hpp`); the
/// trainer applies it to `f(G(z))`. Without it, features are conditions.
///
/// A TORCH_MODULE holder models each concept when the module it holds does.
///
/// **Laws.**
///  - `log_prob` is a normalised log density in `z`, differentiable in the
///    translator's parameters (that is what zero-shot training maximises).
///  - `sample` draws from that density, through `tr0n::random` (so a seeded
///    run is reproducible and independent of other threads).
///  - `mixture(c)` describes the same density as `log_prob`.
///  - Conditions enter through the translator's own condition stage: every
///    method maps `c` to its condition space first (for an `l2` translator,
///    `c` and `2 c` give the same result). Callers pass conditions as the
///    energy wants them.
///  - Results are on the device and dtype of the translator's parameters.
///
/// **Models.** `mixture_translator` (K = 1 is a plain Gaussian): a
/// `MixtureTranslator` and a `TrainableTranslator`.
///
/// **Rationale.** A minimal concept lets a user plug in any conditional
/// density (a normalising flow, say) for the plain translator start; only the
/// policies that reason about components ask for `mixture`. The condition
/// stage lives in the translator because it is part of what the translator
/// learned: a caller that forgot to normalise would otherwise start every
/// chain off-distribution, silently.
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/unwrap.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <vector>

namespace tr0n {

/// A diagonal Gaussian mixture per condition, with one standard deviation per
/// latent dimension shared by all components (the paper's parameterisation).
struct mixture_params {
  torch::Tensor means;    ///< `[B, K, d]`
  torch::Tensor logits;   ///< `[B, K]`, unnormalised mixture weights
  torch::Tensor log_std;  ///< `[d]`
};

namespace detail {
template <class T>
concept translator_opted_in = enable_translator<T>;

template <class T>
concept translator_has_density = requires(T& t, const torch::Tensor& z, const torch::Tensor& c) {
  { t.log_prob(z, c) } -> std::same_as<torch::Tensor>;
};

template <class T>
concept translator_has_sample = requires(T& t, const torch::Tensor& c, int64_t n) {
  { t.sample(c, n) } -> std::same_as<torch::Tensor>;
};

template <class T>
concept translator_has_dims = requires(const T& t) {
  { t.latent_dim() } -> std::convertible_to<int64_t>;
  { t.condition_dim() } -> std::convertible_to<int64_t>;
};

template <class T>
concept translator_has_mixture = requires(T& t, const torch::Tensor& c) {
  { t.mixture(c) } -> std::same_as<mixture_params>;
};

template <class T>
concept translator_has_parameters = requires(T& t) {
  { t.parameters() } -> std::same_as<std::vector<torch::Tensor>>;
  t.train(true);
};
}  // namespace detail

template <class T>
concept Translator = detail::translator_opted_in<detail::unwrapped_t<T>> &&
                     detail::translator_has_density<detail::unwrapped_t<T>> &&
                     detail::translator_has_sample<detail::unwrapped_t<T>> &&
                     detail::translator_has_dims<detail::unwrapped_t<T>>;

template <class T>
concept MixtureTranslator = Translator<T> && detail::translator_has_mixture<detail::unwrapped_t<T>>;

template <class T>
concept TrainableTranslator = Translator<T> && detail::translator_has_parameters<detail::unwrapped_t<T>>;

}  // namespace tr0n
