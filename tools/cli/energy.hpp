#pragma once
// `--energy`: the energy chosen on the command line, and its default.
#include "flags.hpp"

#include <tr0n/adapters/torchscript.hpp>

#include <tr0n/conditions/transform.hpp>
#include <tr0n/energies/augmented_neg_cosine.hpp>
#include <tr0n/energies/cross_entropy.hpp>
#include <tr0n/energies/neg_cosine.hpp>
#include <tr0n/energies/score.hpp>
#include <tr0n/energies/squared_distance.hpp>

#include <optional>
#include <string_view>

namespace tr0n_cli {

/// The energy chosen on the command line: one type, a switch per evaluation,
/// plus a weighted score term when `--score-head` names one.
struct cli_energy {
  using tr0n_tag = tr0n::energy_tag;
  enum class kind { cross_entropy, neg_cosine, squared } which;
  int64_t augment_copies = 0;
  std::optional<tr0n::score<tr0n::torchscript_head>> score{};
  double score_weight = 0;

  static cli_energy parse(const std::string& name, int64_t augment) {
    return {name == "cross_entropy" ? kind::cross_entropy : name == "squared" ? kind::squared : kind::neg_cosine,
            augment};
  }

  void check_conditions(const torch::Tensor& c, std::string_view where) const {
    if (which == kind::cross_entropy) tr0n::cross_entropy::check_conditions(c, where);
  }

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    auto e = base(ctx);
    return score ? e + score_weight * (*score)(ctx) : e;
  }

 private:
  template <class Ctx>
  torch::Tensor base(const Ctx& ctx) const {
    switch (which) {
      case kind::cross_entropy: return tr0n::cross_entropy{}(ctx);
      case kind::squared: return tr0n::squared_distance{}(ctx);
      case kind::neg_cosine: break;
    }
    if (augment_copies > 0) return tr0n::augmented_neg_cosine<>{.copies = augment_copies}(ctx);
    return tr0n::neg_cosine{}(ctx);
  }
};

/// `--energy` when the flag is left out: what the conditions' space implies
/// (softmax: class probabilities, so cross_entropy; l2: unit embeddings, so
/// neg_cosine). `space`: the translator's condition stage, if any.
inline void resolve_energy(sampling_flags& d, std::optional<tr0n::condition_transform> space) {
  if (!d.energy.empty()) return;
  if (!space)
    tr0n::fail("--energy: needed without a translator (cross_entropy | neg_cosine | squared)");
  if (*space == tr0n::condition_transform::softmax) {
    d.energy = "cross_entropy";
  } else if (*space == tr0n::condition_transform::l2) {
    d.energy = "neg_cosine";
  } else {
    tr0n::fail("--energy: needed: the translator's conditions are raw features (condition stage none), "
                       "which imply no energy (cross_entropy | neg_cosine | squared)");
  }
}

}  // namespace tr0n_cli
