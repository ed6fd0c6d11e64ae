#pragma once
/// \file
/// The training noise on conditions (`translator_training_options`'
/// `condition_noise`, `feature_noise` and `noise_cosine`), outside a run: the
/// conditions a translator is trained on for given features, and the cosine
/// between a noisy and a clean condition that the options give. A program
/// prints the latter before training, so that a noise scale chosen for other
/// features (CLIP's raw ones, of norm about 10) is seen for what it does.
///
/// ```
/// auto o = tr0n::translator_training_options().feature_noise(0.2);  // the official clip_noise_scale
/// double cos = tr0n::expected_noise_cosine(o, tr0n::condition_transform::l2, clip_features);  // 0.911
/// ```
#include <tr0n/conditions/transform.hpp>
#include <tr0n/random.hpp>
#include <tr0n/training/train_translator.hpp>

#include <torch/types.h>

#include <cstdint>
#include <optional>

namespace tr0n {

/// The conditions a translator with condition stage `stage` is trained on for
/// encoder features `features` [B, C], with `options`' noise drawn from the
/// current stream (`tr0n::random`).
inline torch::Tensor training_conditions(const translator_training_options& options, condition_transform stage,
                                         const torch::Tensor& features) {
  options.validate();
  auto to_conditions = [stage](const torch::Tensor& f) { return features_to_conditions(stage, f); };
  return detail::with_training_noise(options, options.feature_noise() > 0 ? features : to_conditions(features),
                                     to_conditions);
}

/// The mean cosine between a noisy and a clean condition under `options`'
/// noise, on features like `features` [B, C] (1 without noise): measured on
/// `draws` noisy copies of each row, from a stream of its own (seed 0), so it
/// is the same number every time and leaves the caller's stream alone.
inline double expected_noise_cosine(const translator_training_options& options, condition_transform stage,
                                     const torch::Tensor& features, int64_t draws = 64) {
  detail::check_positive(draws, "expected_noise_cosine: draws");
  torch::NoGradGuard no_grad;
  const auto f = features.detach().to(torch::kFloat64).repeat({draws, 1});
  generator_scope scope(std::optional<uint64_t>(0), f.device());
  const auto clean = features_to_conditions(stage, f);
  const auto noisy = training_conditions(options, stage, f);
  return torch::cosine_similarity(noisy, clean, -1).mean().item<double>();
}

}  // namespace tr0n
