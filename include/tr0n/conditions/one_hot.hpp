#pragma once
/// \file
/// Class labels as conditions: one-hot rows, the points of a `softmax`
/// translator's condition space that stand for one class each.
#include <tr0n/detail/check.hpp>

#include <torch/types.h>

#include <cstdint>

namespace tr0n {

/// `[B]` class labels in `[0, classes)` to `[B, classes]` one-hot conditions.
inline torch::Tensor one_hot_conditions(const torch::Tensor& labels, int64_t classes,
                                        torch::Dtype dtype = torch::kFloat32) {
  detail::check_positive(classes, "one_hot_conditions: classes");
  return torch::one_hot(labels.to(torch::kLong), classes).to(dtype);
}

}  // namespace tr0n
