#pragma once
/// \file
/// # Concept `Encoder`: the auxiliary model `f` from data to condition features.
///
/// **Definition.** A type that opts in (`using tr0n_tag =
/// tr0n::encoder_tag;` or `tr0n::enable_encoder<T> = true`) with
///  - `f.forward(x)`: data `[B, ...]` to features `[B, C]`;
///  - `f.condition_dim()`: `C`.
///
/// **Laws.** `forward` is differentiable in `x`, keeps the batch size, and
/// returns exactly `condition_dim()` columns. A classifier returns logits; the
/// softmax that maps them into condition space belongs to the translator's
/// condition stage (`mixture_translator_options::transform`), not to the
/// encoder, because the cross-entropy energy wants the logits.
///
/// **Models.** Any user module that opts in; `tr0n::encoder_fn` (from
/// `make_encoder(callable, condition_dim)`) for a plain callable.
///
/// **Rationale.** `condition_dim()` lets the sampler and the trainer reject a
/// condition of the wrong width at the call instead of deep inside a matmul.
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/unwrap.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstdint>

namespace tr0n {
namespace detail {
template <class F>
concept encoder_opted_in = enable_encoder<F>;

template <class F>
concept encoder_has_forward = requires(F& f, const torch::Tensor& x) {
  { f.forward(x) } -> std::convertible_to<torch::Tensor>;
};

template <class F>
concept encoder_has_condition_dim = requires(const F& f) {
  { f.condition_dim() } -> std::convertible_to<int64_t>;
};
}  // namespace detail

template <class F>
concept Encoder = detail::encoder_opted_in<detail::unwrapped_t<F>> &&
                  detail::encoder_has_forward<detail::unwrapped_t<F>> &&
                  detail::encoder_has_condition_dim<detail::unwrapped_t<F>>;

}  // namespace tr0n
