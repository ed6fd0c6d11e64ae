#pragma once
// The tool's core, shared by `train`, `sample` and `serve`: the models the
// flags name, loaded and checked the same way, the one vocabulary of starts,
// and the sampler for a start.
#include "energy.hpp"
#include "flags.hpp"
#include "images.hpp"
#include "prior.hpp"

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
    if (out.latent_dim != d) tr0n::fail("--latent-dim ", out.latent_dim, " does not match the translator's latent_dim ", d);
  }
  if (out.latent_dim == 0) tr0n::fail("--latent-dim: needed without a translator");
  return out;
}

/// G, f and the prior G's latents come from, as the common flags name them
/// (one `latent_dim` wide); G's output is checked against `--image-shape`.
struct loaded_models {
  cli_prior prior;
  tr0n::torchscript_generator<cli_prior> generator;
  tr0n::torchscript_encoder encoder;

  static loaded_models load(const common_flags& f, int64_t latent_dim, torch::Device device) {
    auto prior = cli_prior::parse(f.prior, latent_dim);
    const auto options = tr0n::torchscript_options().device(device);
    tr0n::torchscript_generator<cli_prior> generator(f.generator, prior, options);
    tr0n::torchscript_encoder encoder(f.encoder, generator.example_output(), options);
    if (!f.image_shape.empty()) as_images(generator.example_output(), f.image_shape);
    return {std::move(prior), std::move(generator), std::move(encoder)};
  }
};

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

/// The sampler options the sampling flags set, for a run of `steps` steps.
inline tr0n::sampler_options sampler_options_for(const sampling_flags& f, int64_t steps,
                                                 std::optional<uint64_t> seed) {
  return tr0n::sampler_options()
      .steps(steps)
      .momentum(f.momentum)
      .grad_clip(f.grad_clip)
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
