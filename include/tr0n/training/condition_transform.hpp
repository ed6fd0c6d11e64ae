#pragma once
/// \file
/// How the encoder's output becomes a condition: `none` (CLIP-style features
/// used as they are), `softmax` (classifier logits to class probabilities,
/// so one-hot class conditions live in the same space), `l2` (unit-norm
/// embeddings, as CLIP compares them).
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/math.hpp>

#include <torch/types.h>

#include <string_view>

namespace tr0n {

enum class condition_transform { none, softmax, l2 };

inline torch::Tensor apply(condition_transform t, const torch::Tensor& features) {
  switch (t) {
    case condition_transform::softmax: return torch::softmax(features, -1);
    case condition_transform::l2: return detail::l2_normalize(features);
    case condition_transform::none: break;
  }
  return features;
}

inline condition_transform parse_condition_transform(std::string_view s) {
  if (s == "none") return condition_transform::none;
  if (s == "softmax") return condition_transform::softmax;
  if (s == "l2") return condition_transform::l2;
  detail::fail("condition_transform: expected one of none, softmax, l2, got '", s, "'");
}

}  // namespace tr0n
