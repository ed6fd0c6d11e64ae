#pragma once
/// \file
/// `score`: a learned score of the encoder's output, which the dynamics raise:
/// E = -h(f(G(z))) per sample, for a head `h` that maps features `[B, C]` to
/// scores `[B]` or `[B, 1]`. The official code's aesthetic term is one: a
/// linear layer on the unit CLIP embedding (`unit_features = true`), added to
/// the cosine energy with a weight:
///
/// ```
/// auto aesthetic = tr0n::torchscript_head("aesthetic.pt", clip.forward(g.example_output()));
/// auto energy = 1.0 * tr0n::neg_cosine{} + 0.1 * tr0n::score{aesthetic, /*unit_features=*/true};
/// ```
/// The head shares the context's `f(G(z))` with the other terms; it ignores
/// the condition. A head is any copyable callable, const-callable on a tensor.
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/math.hpp>

#include <torch/types.h>

#include <concepts>
#include <functional>

namespace tr0n {

template <class Head>
  requires std::copy_constructible<Head> && std::invocable<const Head&, const torch::Tensor&>
struct score {
  using tr0n_tag = energy_tag;

  Head head;
  /// The head sees f(G(z)) / |f(G(z))| (as the official aesthetic predictor does), else f(G(z)).
  bool unit_features = false;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    const auto& features = ctx.features();
    torch::Tensor s = std::invoke(head, unit_features ? detail::l2_normalize(features) : features);
    if (s.numel() != features.size(0) || s.dim() > 2)
      detail::fail("score: the head must give one score a sample, [B] or [B, 1]; for features ",
                   detail::shape_of(features), " it gave ", detail::shape_of(s));
    return -s.reshape({-1});
  }
};

template <class Head>
score(Head) -> score<Head>;
template <class Head>
score(Head, bool) -> score<Head>;

}  // namespace tr0n
