#pragma once
// `tr0n train`: a translator trained zero-shot on (z, f(G(z))) pairs.
#include "core.hpp"
#include "setup.hpp"

#include <tr0n/callbacks/progress_bar.hpp>
#include <tr0n/io/atomic_file.hpp>
#include <tr0n/training/noise.hpp>
#include <tr0n/training/train_translator.hpp>
#ifdef TR0N_WITH_DISTRIBUTED
#include <tr0n/distributed/train.hpp>
#endif

#include <torch/serialize.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

namespace tr0n_cli {

struct train_flags {
  std::string transform, out, checkpoint;
  int64_t checkpoint_every = -1;  // -1: every tenth of the run
  bool resume = false;
  double condition_noise = 0, feature_noise = 0, noise_cosine = 0;
  bool adaptive_noise = false;
  double lr = tr0n::translator_training_options().lr();
  int64_t mixtures = 10, hidden = 0;
  int64_t steps = tr0n::translator_training_options().steps();
  int64_t batch = tr0n::translator_training_options().batch_size();
};

/// The training noise, in the three forms of `translator_training_options` (one at a time).
inline void add_noise(CLI::App* cmd, train_flags& f) {
  auto* condition = cmd->add_option("--condition-noise", f.condition_noise,
                                    "Std of Gaussian noise on each coordinate of the conditions, after the condition "
                                    "stage (on unit conditions of width C: a cosine of about 1/sqrt(1 + S^2 C))")
                        ->check(CLI::NonNegativeNumber);
  auto* feature = cmd->add_option("--feature-noise", f.feature_noise,
                                  "The official clip_noise_scale: std of Gaussian noise on the encoder's raw features, "
                                  "before the condition stage (official: 0.2 for StyleGAN and NVAE, 0.5 for BigGAN "
                                  "with OpenCLIP)")
                      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--adaptive-noise", f.adaptive_noise,
                "The official with_adaptive_noise: --feature-noise scaled by each row's feature norm")
      ->needs(feature);
  auto* cosine = cmd->add_option("--noise-cosine", f.noise_cosine,
                                 "Noise given by its effect: the expected cosine between a noisy and a clean "
                                 "condition, in (0, 1) (the text job's measured modality gap: 0.657)")
                     ->check(CLI::Range(0.0, 0.999999));
  condition->excludes(feature)->excludes(cosine);
  feature->excludes(cosine);
}

inline CLI::App* add_train(CLI::App& app, common_flags& common, train_flags& f) {
  auto* cmd = app.add_subcommand("train", "Train a translator zero-shot on (z, f(G(z))) pairs");
  add_common(cmd, common, true);
  cmd->add_option("--condition-transform", f.transform,
                  "How the encoder's output becomes a condition: softmax (a classifier's logits), "
                  "l2 (an embedding compared by cosine, as CLIP), none (features as they are)")
      ->required()
      ->check(CLI::IsMember({"none", "softmax", "l2"}));
  add_noise(cmd, f);
  cmd->add_option("--mixtures", f.mixtures, "Mixture components K")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--hidden", f.hidden, "Translator hidden width (0: the library's default)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--steps", f.steps, "Training steps")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--batch", f.batch, "Pairs per step")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--lr", f.lr, "Adam learning rate (the mixture's scale learns 10x faster)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--out", f.out, "Where to write the translator")->required();
  cmd->add_option("--checkpoint", f.checkpoint,
                  "Where checkpoints go (default: the --out path with .ckpt appended); removed once the "
                  "translator is written");
  cmd->add_option("--checkpoint-every", f.checkpoint_every,
                  "Steps between checkpoints (default: a tenth of --steps; 0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--resume", f.resume,
                "Continue the run saved in the checkpoint, with the flags it was started with");
  return cmd;
}

/// A translator for G's latents and f's conditions, its initial weights from `--seed`.
inline tr0n::mixture_translator new_translator(const train_flags& f, const common_flags& common,
                                               const loaded_models& m, torch::Device device) {
  auto opts = tr0n::mixture_translator_options(m.encoder.condition_dim(), common.latent_dim)
                  .components(f.mixtures)
                  .hidden(f.hidden)
                  .transform(tr0n::parse_condition_transform(f.transform));
  if (auto b = m.prior().common_box(); b && b->lo == -b->hi) opts.radius(b->hi);
  // LibTorch initialises modules from its global generator: seed it for the initial weights.
  // (A resumed run takes them from its checkpoint.)
  if (common.seed) torch::manual_seed(*common.seed);
  tr0n::mixture_translator q(opts);
  q->to(device);
  return q;
}

/// The cosine between a noisy and a clean condition that the noise flags give
/// on these models' features (measured on the probe batch), before training.
inline void announce_noise(const tr0n::translator_training_options& o, loaded_models& m,
                           tr0n::condition_transform stage) {
  if (!(o.condition_noise() > 0 || o.feature_noise() > 0 || o.noise_cosine() > 0)) return;
  torch::Tensor features;
  {
    torch::NoGradGuard no_grad;
    features = m.encoder.forward(m.example).to(torch::kFloat32);
  }
  const double cosine = tr0n::expected_noise_cosine(o, stage, features);
  const char* form = o.feature_noise() > 0 ? (o.adaptive_feature_noise() ? "adaptive feature noise" : "feature noise")
                     : o.noise_cosine() > 0 ? "noise by cosine"
                                            : "condition noise";
  const double value = o.feature_noise() > 0 ? o.feature_noise() : o.noise_cosine() > 0 ? o.noise_cosine()
                                                                                         : o.condition_noise();
  std::fprintf(stderr,
               "tr0n train: %s %g: expected cosine %.3f between a noisy and a clean condition (features of norm %.3g, "
               "width %lld)\n",
               form, value, cosine, features.norm(2, -1).mean().item<double>(),
               static_cast<long long>(features.size(1)));
}

inline int run_train(common_flags common, const train_flags& f) {
  const auto setup = run_setup::start(common);
  const auto device = setup.device;
  bool alone = true;
#ifdef TR0N_WITH_DISTRIBUTED
  auto group = run_setup::join(common, device, /*share_seed=*/false);
  alone = group.alone();
#endif
  auto m = loaded_models::load(common, common.latent_dim, device);
  auto& generator = m.generator;
  auto& encoder = m.encoder;
  auto q = new_translator(f, common, m, device);
  setup.announce("train", common, "transform " + f.transform + ", " + std::to_string(f.steps) + " steps of " +
                                      std::to_string(f.batch) + " pairs, lr " + std::to_string(f.lr));
  const auto checkpoint = f.checkpoint.empty() ? f.out + ".ckpt" : f.checkpoint;
  const auto every = f.checkpoint_every >= 0 ? f.checkpoint_every : std::max<int64_t>(1, f.steps / 10);
  if (f.resume && alone && !std::filesystem::exists(checkpoint))  // in a group: rank 0's file, sent to all
    tr0n::fail("--resume: no checkpoint at ", checkpoint,
               f.checkpoint.empty() ? " (the default, --out with .ckpt appended; --checkpoint names another)" : "");
  if (f.resume) std::fprintf(stderr, "tr0n train: resuming from %s\n", checkpoint.c_str());
  auto training = tr0n::translator_training_options()
                      .steps(f.steps)
                      .batch_size(f.batch)
                      .lr(f.lr)
                      .condition_noise(f.condition_noise)
                      .feature_noise(f.feature_noise)
                      .adaptive_feature_noise(f.adaptive_noise)
                      .noise_cosine(f.noise_cosine)
                      .seed(common.seed)
                      .precision(setup.precision);
  if (every > 0 || f.resume) training.checkpoint_path(checkpoint).checkpoint_every(every);
  if (f.resume) training.resume_from(checkpoint);
  announce_noise(training, m, q->transform());
  m.keep_only(setup.precision);  // pairs are made at the run's precision only
  auto bar = [&] { return tr0n::progress_bar("translator").every(std::max<int64_t>(1, f.steps / 50)); };
  auto finish = [&](const tr0n::training_report& report, const char* nll_note) {
    tr0n::write_file_atomically(f.out, [&](std::ostream& out) { torch::save(q, out); });
    if (!training.checkpoint_path().empty()) std::filesystem::remove(checkpoint);
    std::fprintf(stderr, "wrote %s: NLL %.4f%s, std %.4g to %.4g (started at %.4g to %.4g), %lld steps skipped\n",
                 f.out.c_str(), report.nll(), nll_note, report.std_min, report.std_max, report.initial_std_min,
                 report.initial_std_max, static_cast<long long>(report.skipped_steps));
    for (const auto& w : report.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  };
#ifdef TR0N_WITH_DISTRIBUTED
  if (!group.alone()) {
    std::fprintf(stderr, "tr0n train: rank %lld of %lld, batch %lld a rank (%lld in all)\n",
                 static_cast<long long>(group.rank()), static_cast<long long>(group.world_size()),
                 static_cast<long long>(f.batch), static_cast<long long>(f.batch * group.world_size()));
    auto report = group.is_root() ? tr0n::distributed::train_translator(group, q, generator, encoder, training, bar())
                                  : tr0n::distributed::train_translator(group, q, generator, encoder, training);
    if (group.is_root()) finish(report, " (mean over the ranks)");  // only rank 0 writes
    return 0;
  }
#endif
  finish(tr0n::train_translator(q, generator, encoder, training, bar()), "");
  return 0;
}

}  // namespace tr0n_cli
