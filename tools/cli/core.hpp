#pragma once
// The tool's core, shared by `train`, `sample` and `serve`: the models the
// flags name, loaded and checked the same way, the one vocabulary of starts,
// and the sampler for a start.
#include "energy.hpp"
#include "flags.hpp"
#include "images.hpp"
#include "prior.hpp"

#include <tr0n/adapters/preprocess.hpp>
#include <tr0n/adapters/torchscript.hpp>
#include <tr0n/init/best_of.hpp>
#include <tr0n/init/prior.hpp>
#include <tr0n/init/translator_mixture.hpp>
#include <tr0n/init/translator_mode.hpp>
#include <tr0n/init/translator_sample.hpp>
#include <tr0n/sampling/sampler.hpp>
#include <tr0n/schedules/noise.hpp>
#include <tr0n/schedules/step_schedules.hpp>
#include <tr0n/translators/mixture_translator.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <utility>

namespace tr0n_cli {

/// The translator of `--translator` (none for an empty path), with the latent
/// width: `--latent-dim` if given (it must match), else the translator's.
struct loaded_translator {
  std::optional<tr0n::mixture_translator> q;
  int64_t latent_dim = 0;
};

inline loaded_translator load_translator(const std::string& path, int64_t latent_dim, torch::Device device) {
  loaded_translator out{std::nullopt, latent_dim};
  if (!path.empty()) {
    out.q = tr0n::load_mixture_translator(path, device);
    (*out.q)->eval();
    const auto d = (*out.q)->latent_dim();
    if (out.latent_dim == 0) out.latent_dim = d;
    if (out.latent_dim != d)
      tr0n::fail("--latent-dim: a latent of width ", out.latent_dim, " does not match the translator's latent_dim ", d);
  }
  if (out.latent_dim == 0) tr0n::fail("--latent-dim: needed without a translator");
  return out;
}

/// `--generator-range LO:HI`.
inline std::pair<double, double> generator_range(const std::string& spec) {
  const auto fields = split(spec, ':');
  if (fields.size() != 2) tr0n::fail("--generator-range: expected LO:HI (as -1:1), got '", spec, "'");
  const double lo = number(fields[0], "--generator-range LO"), hi = number(fields[1], "--generator-range HI");
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi))
    tr0n::fail("--generator-range ", spec, ": expected finite LO < HI");
  return {lo, hi};
}

/// `--encoder-size` and `--encoder-normalize` as the library's preprocessing stage.
inline tr0n::preprocess_options encoder_preprocessing(const common_flags& f) {
  auto options = f.encoder_normalize == "clip"       ? tr0n::preprocess_options::clip()
                 : f.encoder_normalize == "imagenet" ? tr0n::preprocess_options::imagenet()
                                                     : tr0n::preprocess_options();
  return options.size(f.encoder_size);
}

/// G, f and the prior G's latents come from, as the common flags name them
/// (`latent_dim` wide, in `--latent-dim`'s parts): G's output rescaled from `--generator-range` to
/// [0, 1], and f behind the preprocessing stage (`--encoder-size`,
/// `--encoder-normalize`). Without those flags both stages are the identity,
/// bit for bit. G's output is checked against `--image-shape`, and an encoder
/// that fails on it is named with the flags that fix it.
struct loaded_models {
  using generator_type = tr0n::rescaled_generator<tr0n::torchscript_generator<cli_prior>>;
  using encoder_type = tr0n::preprocessed_encoder<tr0n::torchscript_encoder>;
  generator_type generator;
  encoder_type encoder;
  torch::Tensor example;  ///< G's probe batch in [0, 1]: the shape and range of the data

  const cli_prior& prior() const { return generator.prior(); }
  /// From now on G and f run at `p` only, each model held once (`torchscript_generator::keep_only`):
  /// at bf16, half the float32 weights instead of one and a half times them.
  void keep_only(tr0n::precision p) {
    generator.base().keep_only(p);
    encoder.base().keep_only(p);
  }

  static loaded_models load(const common_flags& f, int64_t latent_dim, torch::Device device) {
    const auto options = tr0n::torchscript_options().device(device);
    const auto [lo, hi] = generator_range(f.generator_range);
    const auto parts = f.latent_parts.size() > 1 ? f.latent_parts : std::vector<int64_t>{latent_dim};
    generator_type generator(tr0n::torchscript_generator<cli_prior>(f.generator, cli_prior::parse(f.prior, parts),
                                                                     options),
                             lo, hi);
    auto example = (generator.base().example_output() - lo) / (hi - lo);
    if (!f.image_shape.empty()) as_images(example, f.image_shape);
    const auto preprocessing = encoder_preprocessing(f);
    return {std::move(generator), encoder_type(probed_encoder(f, example, preprocessing, options), preprocessing),
            example};
  }

 private:
  static tr0n::torchscript_encoder probed_encoder(const common_flags& f, const torch::Tensor& example,
                                                  const tr0n::preprocess_options& preprocessing,
                                                  const tr0n::torchscript_options& options) {
    torch::Tensor input;
    try {
      input = tr0n::preprocess_images(preprocessing, example);
    } catch (const std::invalid_argument& e) {
      // Only a flag asks for preprocessing (without them the stage passes anything through): name the one given.
      const std::string flag = f.encoder_normalize != "none" ? "--encoder-normalize " + f.encoder_normalize
                                                              : "--encoder-size " + std::to_string(f.encoder_size);
      tr0n::fail(flag, ": the generator's output ", tr0n::shape_string(example), " is not images [B, C, H, W]",
                 f.encoder_normalize != "none" ? " with C = 3" : "", " (", tr0n::error_line(e),
                 "); give --image-shape C,H,W for a flat output");
    }
    try {
      return tr0n::torchscript_encoder(f.encoder, input, options);
    } catch (const tr0n::model_load_error& e) {
      const std::string why = e.what();
      if (why.find("failed on a probe batch") == std::string::npos) throw;
      throw tr0n::model_load_error(
          why + "; the encoder was given the generator's output " + tr0n::shape_string(example) +
          (f.encoder_size > 0 || f.encoder_normalize != "none" ? " as " + tr0n::shape_string(input) : "") +
          ": give --encoder-size N if it takes N x N images (224 for CLIP ViT-B/32), --encoder-normalize for its "
          "channel statistics, or --image-shape C,H,W for a flat output");
    }
  }
};

/// The energy the sampling flags name, with the score term of `--score-head`
/// (its head probed on the encoder's features of G's probe batch).
inline cli_energy make_energy(const sampling_flags& f, loaded_models& m, torch::Device device) {
  auto energy = cli_energy::parse(f.energy, f.augment);
  if (f.score_head.empty()) return energy;
  torch::Tensor features;
  {
    torch::NoGradGuard no_grad;
    features = m.encoder.forward(m.example);
  }
  energy.score = tr0n::score{tr0n::torchscript_head(f.score_head, features, tr0n::torchscript_options().device(device)),
                             f.score_input == "unit"};
  energy.score_weight = f.score_weight;
  return energy;
}

/// A text tower (`--text-encoder`) and its tokenisation: `--vocabulary` if
/// given, else the tower's own. `condition_dim` > 0: the width its embeddings must have.
struct text_tower {
  tr0n::torchscript_text_encoder encoder;
  tr0n::word_tokenizer tokens;

  static text_tower load(const model_flags& f, torch::Device device, int64_t condition_dim = 0) {
    tr0n::torchscript_text_encoder encoder(f.text_encoder, tr0n::torchscript_options().device(device));
    auto tokens = f.vocabulary.empty() ? encoder.tokenizer()
                                       : tr0n::word_tokenizer::read(f.vocabulary, encoder.context_length());
    if (condition_dim > 0 && encoder.condition_dim() != condition_dim)
      tr0n::fail("--text-encoder: embeddings of width ", encoder.condition_dim(), ", but conditions have width ",
                 condition_dim);
    return {std::move(encoder), std::move(tokens)};
  }
};

/// The tool's one vocabulary of starts: `--init` of `sample` and `serve`, and
/// the "init" of `serve`'s API.
inline constexpr const char* init_words =
    "prior, translator_sample, translator_mode, translator_mixture, best_of:N, tr0n or translator";

/// A start, as named: `policy` is the init policy it runs (`tr0n` is
/// `translator_sample`, the translator's sample and then the steps;
/// `translator` is the same with no steps, the translator alone).
struct start_choice {
  std::string word, policy;
  bool no_steps = false;
  int64_t candidates = 0;  ///< N of best_of:N

  /// `what` names the word's source in errors; `missing` says how to give a translator.
  static start_choice parse(const std::string& word, bool has_translator, const char* what,
                            const char* missing = "--translator (only --init prior samples without one)") {
    start_choice s{word, word == "tr0n" || word == "translator" ? "translator_sample" : word, word == "translator"};
    const bool best_of = word.rfind("best_of:", 0) == 0;
    if (best_of) {
      s.policy = "best_of";
      s.candidates = best_of_count(word.substr(8));
    }
    if (s.policy != "prior" && s.policy != "translator_sample" && s.policy != "translator_mode" &&
        s.policy != "translator_mixture" && !best_of)
      tr0n::fail(what, ": expected ", init_words, ", got '", word, "'");
    if (s.policy != "prior" && !has_translator) tr0n::fail(what, " ", word, ": needs ", missing);
    return s;
  }

 private:
  static int64_t best_of_count(const std::string& digits) {
    int64_t n = 0;
    try {
      size_t used = 0;
      n = std::stoll(digits, &used);
      if (used != digits.size()) n = 0;
    } catch (const std::exception&) {
    }
    if (n < 1 || n > 4096) tr0n::fail("best_of:N: expected N in [1, 4096], got '", digits, "'");
    return n;
  }
};

/// `--step-scale` as per-coordinate multipliers of `prior`'s latent (undefined when not given).
inline torch::Tensor step_scale_for(const sampling_flags& f, const cli_prior& prior) {
  if (f.step_scale.empty()) return {};
  const auto parts = prior.parts();
  if (f.step_scale.size() != parts.size())
    tr0n::fail("--step-scale: ", f.step_scale.size(), " multipliers for ", parts.size(),
               " latent parts (--latent-dim); give one per part");
  return tr0n::part_scales(parts, f.step_scale);
}

/// The sampler options the sampling flags set, for a run of `steps` steps on `prior`'s latents.
inline tr0n::sampler_options sampler_options_for(const sampling_flags& f, int64_t steps,
                                                 std::optional<uint64_t> seed, const cli_prior& prior) {
  return tr0n::sampler_options()
      .steps(steps)
      .momentum(f.momentum)
      .grad_clip(f.grad_clip)
      .step_scale(step_scale_for(f, prior))
      .seed(seed)
      .precision(f.precision);
}

/// `run(sampler)` with the sampler for `start` on G and f, with the step size
/// and the noise of the sampling flags.
template <class G, class F, class E, class Run>
tr0n::sample_result with_sampler(const start_choice& start, G& g, F& f, const E& energy,
                                 std::optional<tr0n::mixture_translator>& q, const tr0n::sampler_options& opts,
                                 const sampling_flags& flags, Run&& run) {
  const tr0n::constant_step schedule{flags.step()};
  const tr0n::fixed_noise noise{flags.noise_std};
  auto from = [&](auto policy) {
    tr0n::sampler s(g, f, energy, *q, opts, policy, schedule, noise);
    return run(s);
  };
  if (start.policy == "prior") {  // the prior start needs no translator, with or without one loaded
    tr0n::sampler s(g, f, energy, opts, tr0n::init::prior{}, schedule, noise);
    return run(s);
  }
  if (start.policy == "translator_sample") return from(tr0n::init::translator_sample{});
  if (start.policy == "translator_mode") return from(tr0n::init::translator_mode{});
  if (start.policy == "translator_mixture") return from(tr0n::init::translator_mixture{});
  return from(tr0n::init::best_of<>{.candidates = start.candidates});
}

}  // namespace tr0n_cli
