#pragma once
/// \file
/// The condition space a translator works in, and the map into it.
///
/// An encoder returns *features* (a classifier's logits, a CLIP tower's
/// embedding). A translator is trained on *conditions*: the features mapped by
/// a `condition_transform`, which the translator records in its options and
/// applies itself (see `mixture_translator`):
///  - `features_to_conditions(t, f)` maps encoder features into the space:
///    `softmax` (logits to class probabilities), `l2` (unit vectors, as CLIP
///    compares them), `none` (features as they are). The trainer applies it to
///    `f(G(z))`; the tool applies it to `f(image)` and to text embeddings.
///  - `canonical_conditions(t, c)` is the idempotent projection the translator
///    applies to every condition it is given, so a caller's conditions land
///    where training put them: `l2` normalises rows; `softmax` and `none` take
///    rows as they are (class probabilities or one-hot rows are already in the
///    simplex, and the energy wants them unchanged).
///
/// ```
/// auto c = tr0n::features_to_conditions(tr0n::condition_transform::softmax, logits);  // rows sum to 1
/// ```
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/math.hpp>

#include <torch/types.h>

#include <string_view>

namespace tr0n {

enum class condition_transform { none, softmax, l2 };

inline torch::Tensor features_to_conditions(condition_transform t, const torch::Tensor& features) {
  switch (t) {
    case condition_transform::softmax: return torch::softmax(features, -1);
    case condition_transform::l2: return detail::l2_normalize(features);
    case condition_transform::none: break;
  }
  return features;
}

inline torch::Tensor canonical_conditions(condition_transform t, const torch::Tensor& conditions) {
  return t == condition_transform::l2 ? detail::l2_normalize(conditions) : conditions;
}

inline std::string_view to_string(condition_transform t) {
  switch (t) {
    case condition_transform::softmax: return "softmax";
    case condition_transform::l2: return "l2";
    case condition_transform::none: break;
  }
  return "none";
}

inline condition_transform parse_condition_transform(std::string_view s) {
  if (s == "none") return condition_transform::none;
  if (s == "softmax") return condition_transform::softmax;
  if (s == "l2") return condition_transform::l2;
  detail::fail("condition_transform: expected one of none, softmax, l2, got '", s, "'");
}

}  // namespace tr0n
