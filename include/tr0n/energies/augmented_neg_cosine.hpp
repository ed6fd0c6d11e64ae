#pragma once
/// \file
/// `augmented_neg_cosine`: the official code's `aug_cosine_latent`. Each
/// generated image is replicated `copies` times, each copy is augmented
/// independently, and the energy is the mean negative cosine between the
/// copies' embeddings and the target, both L2-normalised. Averaging over
/// augmentations keeps Langevin dynamics from fooling the encoder with
/// adversarial pixel patterns.
///
/// ```
/// auto energy = tr0n::augmented_neg_cosine{.copies = 16, .augment = tr0n::diff_augment()};
/// ```
#include <tr0n/augment/diff_augment.hpp>
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/math.hpp>

#include <torch/types.h>

#include <cstdint>

namespace tr0n {

template <class Augment = diff_augment>
struct augmented_neg_cosine {
  using tr0n_tag = energy_tag;

  int64_t copies = 8;
  Augment augment{};

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    if (copies <= 0) detail::fail("augmented_neg_cosine: copies: expected > 0, got ", copies);
    const auto b = ctx.x().size(0);
    auto views = augment(ctx.x().repeat_interleave(copies, 0));
    auto f = detail::l2_normalize(ctx.encode(views));
    auto c = detail::l2_normalize(ctx.condition());
    auto sims = (f.view({b, copies, -1}) * c.unsqueeze(1)).sum(-1);  // [B, copies]
    return -sims.mean(1);
  }
};

static_assert(Energy<augmented_neg_cosine<>>);

}  // namespace tr0n
