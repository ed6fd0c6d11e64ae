#pragma once
/// \file
/// `squared_distance`: E = ||f(G(z)) - c||^2 (weight it for beta/2).
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>

#include <torch/types.h>

namespace tr0n {

struct squared_distance {
  using tr0n_tag = energy_tag;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    return (ctx.features() - ctx.condition()).pow(2).sum(-1);
  }
};

static_assert(Energy<squared_distance>);

}  // namespace tr0n
