#pragma once
/// \file
/// `cross_entropy`: classifier conditioning. `f` returns logits `[B, C]`; the
/// condition is a distribution over classes `[B, C]` (one-hot for a class, or
/// soft) or class labels `[B]` (int64). E = -sum_k c_k log softmax(f(G(z)))_k.
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>

#include <torch/types.h>

namespace tr0n {

struct cross_entropy {
  using tr0n_tag = energy_tag;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    auto log_p = torch::log_softmax(ctx.features(), -1);
    const auto& c = ctx.condition();
    if (!c.is_floating_point()) return -log_p.gather(-1, c.reshape({-1, 1})).squeeze(-1);
    return -(c * log_p).sum(-1);
  }
};

static_assert(Energy<cross_entropy>);

}  // namespace tr0n
