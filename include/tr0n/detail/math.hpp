#pragma once
// Private: small numerical helpers shared by energies, transforms and interpolation.
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tr0n::detail {

/// A per-row tensor `[M]` viewed so it broadcasts against `like` `[M, ...]`.
inline torch::Tensor per_row(const torch::Tensor& per_sample, const torch::Tensor& like) {
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = per_sample.size(0);
  return per_sample.view(shape);
}

/// Each row of `g` (everything past dim 0 flattened) scaled down to L2 norm at most `max_norm`.
inline torch::Tensor clip_rows(const torch::Tensor& g, double max_norm, double eps) {
  if (g.dim() == 2) return g * (max_norm / (g.norm(2, 1, /*keepdim=*/true) + eps)).clamp_max(1.0);
  return g * per_row((max_norm / (g.flatten(1).norm(2, 1) + eps)).clamp_max(1.0), g);
}

/// Rows scaled to unit L2 norm over the last dimension; the floor keeps an
/// all-zero row (and its gradient) finite.
inline torch::Tensor l2_normalize(const torch::Tensor& t) { return t / t.norm(2, -1, true).clamp_min(1e-12); }

}  // namespace tr0n::detail
