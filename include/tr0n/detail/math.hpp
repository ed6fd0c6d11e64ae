#pragma once
// Private: small numerical helpers shared by energies, transforms and interpolation.
#include <torch/types.h>

namespace tr0n::detail {

/// Rows scaled to unit L2 norm over the last dimension; the floor keeps an
/// all-zero row (and its gradient) finite.
inline torch::Tensor l2_normalize(const torch::Tensor& t) { return t / t.norm(2, -1, true).clamp_min(1e-12); }

}  // namespace tr0n::detail
