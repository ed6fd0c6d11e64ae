#pragma once
/// \file
/// # Concept `Translator`: the amortised inverse `q(z | c)`.
///
/// **Minimal definition.** A type that opts in (`using tr0n_tag =
/// tr0n::translator_tag;` or `tr0n::enable_translator<T> = true`) with
///  - `t.log_prob(z, c)`: `[B, d]`, `[B, C]` to `[B]`, differentiable in the
///    translator's parameters (that is what zero-shot training maximises);
///  - `t.sample(c, n)`: `[B, C]` to `[B * n, d]`, condition-major (row
///    `i * n + j` is draw `j` for condition `i`);
///  - `t.mixture(c)`: the Gaussian-mixture parameters (`mixture_params`),
///    needed by the mixture-hybrid start;
///  - `t.latent_dim()` and `t.condition_dim()`.
///
/// A TORCH_MODULE holder models `Translator` when its module does.
/// `TrainableTranslator` adds `parameters()` (a `torch::nn::Module`), which
/// `train_translator` optimises.
///
/// **Laws.** `log_prob` is a normalised log density in `z`; `sample` draws
/// from that density; `mixture(c)` describes the same density.
///
/// **Models.** `mixture_translator` (K = 1 is a plain Gaussian).
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
concept translator_has_interface = requires(T& t, const T& ct, const torch::Tensor& z,
                                            const torch::Tensor& c, int64_t n) {
  { t.log_prob(z, c) } -> std::same_as<torch::Tensor>;
  { t.sample(c, n) } -> std::same_as<torch::Tensor>;
  { t.mixture(c) } -> std::same_as<mixture_params>;
  { ct.latent_dim() } -> std::convertible_to<int64_t>;
  { ct.condition_dim() } -> std::convertible_to<int64_t>;
};
}  // namespace detail

template <class T>
concept Translator = detail::translator_opted_in<detail::unwrapped_t<T>> &&
                     detail::translator_has_interface<detail::unwrapped_t<T>>;

template <class T>
concept TrainableTranslator = Translator<T> && requires(detail::unwrapped_t<T>& t) {
  { t.parameters() } -> std::same_as<std::vector<torch::Tensor>>;
  t.train(true);
};

}  // namespace tr0n
