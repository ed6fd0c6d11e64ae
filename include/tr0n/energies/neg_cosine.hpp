#pragma once
/// \file
/// `neg_cosine`: CLIP-style conditioning. E = -<f(G(z))/|f(G(z))|, c/|c|>, in [-1, 1].
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/math.hpp>

#include <torch/types.h>

namespace tr0n {

struct neg_cosine {
  using tr0n_tag = energy_tag;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    return -(detail::l2_normalize(ctx.features()) * detail::l2_normalize(ctx.condition())).sum(-1);
  }
};

static_assert(Energy<neg_cosine>);

}  // namespace tr0n
