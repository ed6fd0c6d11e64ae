#pragma once
/// \file
/// `neg_cosine`: CLIP-style conditioning. E = -<f(G(z))/|f(G(z))|, c/|c|>, in [-1, 1].
#include <tr0n/concepts/energy.hpp>

#include <torch/types.h>

namespace tr0n {

struct neg_cosine {
  using tr0n_tag = energy_tag;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    // eps keeps the gradient finite for an all-zero feature vector.
    auto f = ctx.features() / ctx.features().norm(2, -1, true).clamp_min(1e-12);
    auto c = ctx.condition() / ctx.condition().norm(2, -1, true).clamp_min(1e-12);
    return -(f * c).sum(-1);
  }
};

static_assert(Energy<neg_cosine>);

}  // namespace tr0n
