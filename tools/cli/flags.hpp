#pragma once
// The tool's flags, in groups declared once and added to every subcommand
// that takes them: a flag added to a group appears in each of them.
//   common    train, sample, serve: the models, the prior, the device, threads, seed, precision, torchrun
//   models    sample, serve: --translator, --text-encoder, --vocabulary
//   sampling  sample, serve: --init, --steps and the energy and dynamics
#include <tr0n/errors.hpp>
#include <tr0n/runtime/precision.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tr0n_cli {

/// `s` split at every `sep` (an empty field where two meet).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char ch : s) {
    if (ch == sep) {
      out.emplace_back();
    } else {
      out.back().push_back(ch);
    }
  }
  return out;
}

/// `s` as a number, all of it; `what` names the flag in the error.
inline double number(const std::string& s, const char* what) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  tr0n::fail(what, ": expected a number, got '", s, "'");
}

/// Flags every subcommand takes.
struct common_flags {
  std::string generator, encoder, prior = "normal", device = "cpu";
  int64_t latent_dim = 0;              ///< the latent's width: the sum of --latent-dim's parts
  std::vector<int64_t> latent_parts;  ///< --latent-dim: the widths of G's latent inputs, in order
  int threads = 0;
  std::optional<uint64_t> seed;
  std::string dist_backend = "gloo";
  double dist_timeout = 300;
  std::vector<int64_t> image_shape;  ///< C, H, W for a generator with flat output
  std::string precision = "auto";    ///< what G and f compute in (auto: run_setup::start)
  std::string generator_range = "0:1", encoder_normalize = "none";  ///< G's output range; f's channel statistics
  int64_t encoder_size = 0;                                         ///< f's input size (0: G's)
};

inline void add_model_files(CLI::App* cmd, common_flags& f, bool latent_required) {
  cmd->add_option("--generator", f.generator, "TorchScript generator: z [B, d] -> x")->required();
  cmd->add_option("--encoder", f.encoder, "TorchScript encoder: x -> [B, C]")->required();
  auto* latent = cmd->add_option_function<std::vector<int64_t>>(
      "--latent-dim",
      [&f](const std::vector<int64_t>& parts) {
        f.latent_parts = parts;
        f.latent_dim = 0;
        for (const auto d : parts) f.latent_dim += d;
      },
      std::string(latent_required ? "Latent width d" : "Latent width d (default: the translator's)") +
          "; d1,d2,... for a generator whose forward takes several latent tensors (BigGAN's z and class "
          "embedding: 128,128): the latent is their concatenation");
  latent->delimiter(',')->check(CLI::PositiveNumber);
  if (latent_required) latent->required();
  cmd->add_option("--prior", f.prior,
                  "normal | truncated:R | uniform[:LO:HI] | codebook:FILE (rows of a [K, d] tensor file, as "
                  "BigGAN's class embeddings); one spec per --latent-dim part, comma-separated, or one for all")
      ->capture_default_str();
  cmd->add_option("--image-shape", f.image_shape,
                  "C,H,W: how a flat generator output [B, C*H*W] is an image (checked at start; sample writes x "
                  "as [N, C, H, W], serve draws it)")
      ->delimiter(',')
      ->expected(3);
  cmd->add_option("--generator-range", f.generator_range,
                  "LO:HI, the range of the generator's output (StyleGAN and BigGAN: -1:1); rescaled to [0, 1] for "
                  "the encoder, and for the images sample writes and serve draws")
      ->capture_default_str();
  cmd->add_option("--encoder-size", f.encoder_size,
                  "N: images are resized (bicubic, differentiably) to N x N before the encoder (CLIP ViT-B/32: 224; "
                  "0: as the generator makes them)")
      ->check(CLI::Range(int64_t{0}, int64_t{8192}))
      ->capture_default_str();
  cmd->add_option("--encoder-normalize", f.encoder_normalize,
                  "Per-channel mean and std the encoder expects: clip (CLIP's), imagenet (torchvision's) or none")
      ->check(CLI::IsMember({"clip", "imagenet", "none"}))
      ->capture_default_str();
}

inline void add_runtime(CLI::App* cmd, common_flags& f) {
  cmd->add_option("--device", f.device, "cpu, cuda, cuda:1, ...")->capture_default_str();
  cmd->add_option("--threads", f.threads,
                  "CPU threads (0: every core); they go to the pool that runs the matrix products, so "
                  "LibTorch's and OpenBLAS's pools never oversubscribe the cores")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seed for reproducible runs");
  cmd->add_option("--precision", f.precision,
                  "What the generator and the encoder compute in: fp32, bf16 (fast on CPUs with AVX512_BF16, and "
                  "on GPUs) or fp16 (CUDA only); latents, energies and updates stay float32. auto: bf16 for sample "
                  "on a CPU with AVX512_BF16 (measured: same quality, 2-3x the speed), else fp32")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}))
      ->capture_default_str();
  cmd->add_option("--dist-backend", f.dist_backend,
                  "Started by torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set): how the processes talk "
                  "(gloo: CPU; nccl: CUDA)")
      ->check(CLI::IsMember({"gloo", "nccl"}))
      ->capture_default_str();
  cmd->add_option("--dist-timeout", f.dist_timeout,
                  "Started by torchrun: seconds to wait for the other processes, to connect and at every exchange, "
                  "before failing with an error (a process that died, or never came)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

/// The common group: the model files and the run's settings.
inline void add_common(CLI::App* cmd, common_flags& f, bool latent_required) {
  add_model_files(cmd, f, latent_required);
  add_runtime(cmd, f);
}

/// The models `sample` and `serve` add to G and f: a translator, and a text tower for prompts.
struct model_flags {
  std::string translator, text_encoder, vocabulary;
};

/// The models group; returns `--text-encoder`, for the subcommand to tie it to its prompt flag.
inline CLI::Option* add_models(CLI::App* cmd, model_flags& f) {
  cmd->add_option("--translator", f.translator,
                  "Translator written by `tr0n train` (without one, only the prior start: --init prior)");
  auto* text = cmd->add_option("--text-encoder", f.text_encoder,
                               "TorchScript text tower: token ids [N, L] -> [N, C], for prompts");
  cmd->add_option("--vocabulary", f.vocabulary,
                  "Vocabulary file, one word per line from id 0 (default: the text tower's own)")
      ->needs(text);
  return text;
}

/// The start, the steps, the energy and the dynamics of `sample` and `serve`.
/// Defaults: ten small gradient steps with the official code's SGLD noise
/// (0.01). Exact Langevin noise, sqrt(2 eta), on an energy without a prior
/// term random-walks the chains and loses what the translator's start gave
/// (measured: lower accuracy than no steps at all).
///
/// The default step depends on the energy, whose gradients differ in scale:
///  - cross_entropy and squared: 0.03. On the Fashion-MNIST job's models, 10
///    steps of 0.01 / 0.03 / 0.05 took the evaluation accuracy of the
///    translator's start from 0.85 to 0.907 / 0.928 / 0.932 (seed 0).
///  - neg_cosine: 1. A cosine's gradient is bounded; on the text job's small
///    CLIP and class prompts, 10 steps of 1 score best of 0.03, 0.3 and 1
///    (benchmarks/tool_text_steps.sh; its table is in the README).
struct sampling_flags {
  std::string init;  ///< a word of the one start vocabulary (core.hpp); empty: the default
  int64_t steps = 10;
  std::string energy;
  tr0n::precision precision = tr0n::precision::fp32;  ///< from --precision (run_setup)
  int64_t augment = 0;
  double step_size = 0, noise_std = 0.01, momentum = 0, grad_clip = 0;
  std::vector<double> step_scale;  ///< per --latent-dim part: its step-size multiplier
  std::string score_head, score_input = "unit";
  double score_weight = 1;
  /// The step size: the flag's, else the energy's default.
  double step() const { return step_size > 0 ? step_size : energy == "neg_cosine" ? 1.0 : 0.03; }
};

/// The sampling group. `init_help` and `steps_help` say what the subcommand
/// does with them (`serve`: a request's defaults).
inline void add_sampling(CLI::App* cmd, sampling_flags& f, const std::string& init_help, const char* steps_help) {
  cmd->add_option("--init", f.init,
                  "prior | translator_sample | translator_mode | translator_mixture | best_of:N | tr0n "
                  "(translator_sample) | translator (translator_sample, no steps); " + init_help);
  cmd->add_option("--steps", f.steps, steps_help)->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--energy", f.energy,
                  "cross_entropy | neg_cosine | squared (default: from the translator's condition stage, "
                  "softmax: cross_entropy, l2: neg_cosine)")
      ->check(CLI::IsMember({"cross_entropy", "neg_cosine", "squared"}));
  cmd->add_option("--augment", f.augment, "neg_cosine over N augmented copies (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--step-size", f.step_size, "Step size eta (default: 0.03, or 1 for neg_cosine)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--step-scale", f.step_scale,
                  "M1,M2,...: one step-size multiplier per --latent-dim part (the official BigGAN code moves z and "
                  "the class embedding at separate rates; default: 1 for each)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  cmd->add_option("--noise-std", f.noise_std, "Langevin noise std per step (sqrt(2 * eta) is exact Langevin)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--momentum", f.momentum, "Momentum on the gradient (official: 0.99)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  cmd->add_option("--grad-clip", f.grad_clip, "Per-sample gradient-norm clipping (0: off; official: 1)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  auto* head = cmd->add_option("--score-head", f.score_head,
                               "TorchScript head h: features [B, C] -> scores [B] or [B, 1] (an aesthetic predictor); "
                               "the energy gains -W h(f(G(z))), so the steps raise the score");
  cmd->add_option("--score-weight", f.score_weight, "W, the score term's weight")
      ->needs(head)
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--score-input", f.score_input,
                  "What h sees: unit (f(G(z)) / |f(G(z))|, as the official aesthetic predictor) or features")
      ->needs(head)
      ->check(CLI::IsMember({"unit", "features"}))
      ->capture_default_str();
}

}  // namespace tr0n_cli
