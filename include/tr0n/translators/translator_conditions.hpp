#pragma once
/// \file
/// What any translator offers beyond its concept: encoder features mapped into
/// its condition space (`translator_conditions`), and a mixture's mode
/// (`mode_of`).
#include <tr0n/concepts/translator.hpp>
#include <tr0n/detail/unwrap.hpp>

#include <torch/types.h>

namespace tr0n {

/// The mean of each row's most likely component, `[B, d]`.
inline torch::Tensor mode_of(const mixture_params& p) {
  auto idx = p.logits.argmax(-1).view({-1, 1, 1}).expand({p.means.size(0), 1, p.means.size(2)});
  return p.means.gather(1, idx).squeeze(1);
}

/// Encoder features mapped into `t`'s condition space (the identity for a
/// translator without a condition stage).
template <Translator T>
torch::Tensor translator_conditions(T& t, const torch::Tensor& features) {
  auto& q = detail::unwrap(t);
  if constexpr (requires { { q.features_to_conditions(features) } -> std::same_as<torch::Tensor>; }) {
    return q.features_to_conditions(features);
  } else {
    return features;
  }
}

}  // namespace tr0n
