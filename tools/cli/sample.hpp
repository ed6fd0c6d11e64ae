#pragma once
// `tr0n sample`: conditions in, latents and images out.
#include "core.hpp"
#include "setup.hpp"

#include <tr0n/conditions/interpolate.hpp>
#include <tr0n/conditions/one_hot.hpp>
#include <tr0n/callbacks/progress_bar.hpp>
#include <tr0n/io/tensor_file.hpp>
#include <tr0n/runtime/allocator.hpp>
#include <tr0n/runtime/memory_probe.hpp>
#ifdef TR0N_WITH_DISTRIBUTED
#include <tr0n/distributed/sample.hpp>
#endif

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace tr0n_cli {

struct sample_flags {
  model_flags models;
  sampling_flags sampling;
  std::string conditions, transform, out;
  std::vector<int64_t> labels;
  std::vector<std::string> images, prompts;
  int64_t interpolate = 0, per_condition = 1;
  std::optional<int64_t> max_batch;
  int64_t memory_budget_mib = 512;
};

namespace detail {
/// Off the CPU, where the probe cannot count (tr0n/runtime/memory_probe.hpp):
/// chains per batch that fit `budget_mib` if each holds its latent, its data
/// sample and, for the backward pass, about `activation_factor` times that in
/// activations of G and f (times the augmented copies). An estimate.
inline int64_t estimated_max_batch(int64_t budget_mib, int64_t latent_dim, const torch::Tensor& example_x,
                                   int64_t augment_copies) {
  constexpr int64_t activation_factor = 32;  // measured 20 on the Fashion-MNIST VAE and MLP
  const int64_t per_sample = example_x.numel() / std::max<int64_t>(1, example_x.size(0));
  const int64_t bytes = 4 * (latent_dim + activation_factor * per_sample * std::max<int64_t>(1, augment_copies));
  return std::max<int64_t>(1, budget_mib * (int64_t{1} << 20) / std::max<int64_t>(1, bytes));
}

/// A chain this large (a real-size model) makes the heap worth trimming after every step.
inline constexpr int64_t large_chain_bytes = int64_t{32} << 20;

/// After each step, when chains are large: the step's freed pages go back to the
/// system, so the next step's peak is the budget's, not the budget's plus what glibc kept.
struct heap_trim {
  bool on = false;
  void on_step(const tr0n::step_info&) const {
    if (on) tr0n::release_free_memory();
  }
};

/// Chains a batch, whether they are large enough to trim the heap after each step, and what
/// the budget leaves over them: how much of the freed large blocks may be kept for reuse
/// (`tr0n::map_large_tensors`).
struct batching {
  int64_t max_batch = 0;
  heap_trim trim{};
  int64_t spare_bytes = 0;
};

/// `--max-batch` if given, else the chains that fit `--memory-budget`, measured by a probe chunk of
/// `s` (forward and backward through G and f at the run's precision), and said on stderr.
template <class Sampler>
batching batching_for(const sample_flags& f, Sampler& s, const torch::Tensor& conditions, int64_t latent_dim,
                      const torch::Tensor& example_x) {
  if (f.max_batch) return {*f.max_batch};
  const int64_t budget = f.memory_budget_mib * (int64_t{1} << 20);
  tr0n::release_free_memory();  // what loading the models left in the heap
  if (const auto measured = tr0n::measure_chain_memory(s, conditions, budget)) {
    const int64_t chains = measured->chains_within(budget);
    std::fprintf(stderr, "tr0n sample: a chain takes %.1f MiB (measured), a batch %.1f MiB more: %lld chains a batch "
                 "within --memory-budget %lld\n",
                 static_cast<double>(measured->per_chain) / (1 << 20), static_cast<double>(measured->fixed) / (1 << 20),
                 static_cast<long long>(chains), static_cast<long long>(f.memory_budget_mib));
    tr0n::release_free_memory();  // what the probe (and a precision's weight copy) left in the heap
    return {chains, heap_trim{measured->per_chain >= large_chain_bytes},
            std::max<int64_t>(0, budget - measured->fixed - chains * measured->per_chain)};
  }
  return {estimated_max_batch(f.memory_budget_mib, latent_dim, example_x, f.sampling.augment)};
}
}  // namespace detail

inline CLI::App* add_sample(CLI::App& app, common_flags& common, sample_flags& f) {
  auto* cmd = app.add_subcommand("sample", "Sample latents for conditions and write z, x, energy, ok");
  add_common(cmd, common, false);
  auto* text = add_models(cmd, f.models);
  auto* cond = cmd->add_option("--conditions", f.conditions, "Tensor file: float [N, C] or int64 labels [N]");
  auto* labels = cmd->add_option("--labels", f.labels, "Class labels, comma-separated (one-hot conditions)")
                     ->delimiter(',')
                     ->check(CLI::NonNegativeNumber);
  auto* img = cmd->add_option("--condition-image", f.images, "Reference image(s): condition from f(image)");
  auto* prompt = cmd->add_option("--prompt", f.prompts, "Text prompt(s): condition from the text encoder (repeatable)");
  prompt->needs(text);
  text->needs(prompt);
  cond->excludes(img)->excludes(labels)->excludes(prompt);
  labels->excludes(img)->excludes(prompt);
  img->excludes(prompt);
  cmd->add_option("--interpolate", f.interpolate, "With two images: K conditions along the slerp path")
      ->check(CLI::Range(int64_t{2}, int64_t{1000}));
  cmd->add_option("--condition-transform", f.transform,
                  "Without a translator: how f(image) becomes a condition (none | softmax | l2); "
                  "a translator brings its own")
      ->check(CLI::IsMember({"none", "softmax", "l2"}));
  add_sampling(cmd, f.sampling, "default: translator_sample with a translator, else prior", "Langevin steps T");
  cmd->add_option("--samples-per-condition", f.per_condition, "Samples per condition")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch", f.max_batch,
                  "Most chains evaluated at once (0: all at once; default: what fits --memory-budget). Results do "
                  "not depend on it")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--memory-budget", f.memory_budget_mib,
                  "MiB for one batch of chains, for the default --max-batch: what a chain takes is measured at "
                  "start (forward and backward of one and of two chains through G and f)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--out", f.out, "Where to write the samples")->required();
  return cmd;
}

namespace detail {

/// The conditions the flags describe, in the condition space `transform` defines.
/// `space`: the translator's condition transform, or the flag's without a translator.
inline torch::Tensor read_flag_conditions(const sample_flags& f, std::optional<tr0n::condition_transform> space,
                                          loaded_models& m, torch::Device device) {
  const auto classes = m.encoder.condition_dim();
  const auto transform = space.value_or(tr0n::condition_transform::none);
  auto from_labels = [&](torch::Tensor labels, const std::string& source) {
    if (labels.numel() > 0 && (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= classes))
      tr0n::fail(source, ": class labels must lie in [0, ", classes, ")");
    if (!space) return tr0n::one_hot_conditions(labels.to(device), classes);
    if (transform == tr0n::condition_transform::l2)
      tr0n::fail(source, ": class labels make one-hot conditions, but the translator's conditions are "
                                 "unit embeddings (transform l2); give float conditions");
    if (transform == tr0n::condition_transform::none)
      tr0n::fail(source, ": class labels make one-hot class probabilities, but the translator was trained "
                                 "on the encoder's raw features (transform none); train it with "
                                 "--condition-transform softmax");
    return tr0n::one_hot_conditions(labels.to(device), classes);
  };
  if (!f.labels.empty()) return from_labels(torch::tensor(f.labels, torch::kLong), "--labels");
  if (!f.conditions.empty()) {
    auto c = tr0n::read_conditions(f.conditions);
    if (c.scalar_type() == torch::kLong) return from_labels(c, f.conditions);
    return c.to(device, torch::kFloat32);
  }
  torch::NoGradGuard no_grad;
  if (!f.prompts.empty()) {
    auto text = text_tower::load(f.models, device);
    torch::Tensor embeddings;
    try {
      embeddings = text.encoder.encode_texts(text.tokens, f.prompts);
    } catch (const tr0n::unknown_word_error& e) {
      tr0n::fail("--prompt: unknown word '", e.word(), "' in \"", e.text(), "\" (not in the vocabulary of ",
                         f.models.vocabulary.empty() ? f.models.text_encoder : f.models.vocabulary, ")");
    }
    return tr0n::features_to_conditions(transform, embeddings).to(torch::kFloat32);
  }
  if (f.images.empty()) tr0n::fail("sample: give --labels, --conditions, --condition-image or --prompt");
  std::vector<torch::Tensor> rows;
  for (const auto& path : f.images) rows.push_back(m.encoder.forward(read_image(path, m.example)));
  auto features = torch::cat(rows);
  if (f.interpolate > 0) {
    if (f.images.size() != 2)
      tr0n::fail("--interpolate: needs exactly two --condition-image, got ", f.images.size());
    features = tr0n::interpolate(features[0], features[1], f.interpolate);
  }
  return tr0n::features_to_conditions(transform, features).to(torch::kFloat32);
}

}  // namespace detail

namespace detail {

/// The condition space: the translator's, else `--condition-transform`'s (none if not given).
inline std::optional<tr0n::condition_transform> condition_space(const sample_flags& f,
                                                                const std::optional<tr0n::mixture_translator>& q) {
  std::optional<tr0n::condition_transform> space;
  if (!f.transform.empty()) space = tr0n::parse_condition_transform(f.transform);
  if (!q) return space;
  if (space && *space != (*q)->transform())
    tr0n::fail("--condition-transform ", f.transform, ": the translator was trained with ",
               tr0n::to_string((*q)->transform()), "; leave the flag out");
  return (*q)->transform();
}


inline void report_written(const std::string& out, const tr0n::sample_result& r) {
  std::fprintf(stderr, "wrote %s: %lld samples, %lld ok, mean energy %.4f\n", out.c_str(),
               static_cast<long long>(r.z.size(0)), static_cast<long long>(r.ok.sum().item<int64_t>()),
               r.energy.mean().item<double>());
}

}  // namespace detail

inline int run_sample(common_flags common, sample_flags f) {
  // Tensors of 4 MiB and more get mappings of their own, returned when freed: real-size models'
  // weights and activations then never sit in glibc's heap, whose freed blocks would add to the peak.
  // CPU tensors of 4 MiB and more get mappings of their own, returned when freed: a real-size
  // model's weights and activations never sit in glibc's heap, whose freed blocks add to the peak
  // (tr0n/runtime/allocator.hpp). TR0N_NO_MAP=1 turns it off, for comparisons.
  const bool mapped = std::getenv("TR0N_NO_MAP") == nullptr && tr0n::map_large_tensors();
  const bool has_translator = !f.models.translator.empty();
  const auto setup = run_setup::start(common, true);
  f.sampling.precision = setup.precision;
#ifdef TR0N_WITH_DISTRIBUTED
  auto group = run_setup::join(common, setup.device, /*share_seed=*/true);
  const bool root = group.is_root();
#else
  const bool root = true;
#endif
  const auto start = start_choice::parse(
      f.sampling.init.empty() ? (has_translator ? "translator_sample" : "prior") : f.sampling.init, has_translator,
      "--init");
  if (start.no_steps) f.sampling.steps = 0;
  auto [q, latent_dim] = load_translator(f.models.translator, common.latent_dim, setup.device);
  const auto space = detail::condition_space(f, q);
  auto m = loaded_models::load(common, latent_dim, setup.device);
  const auto conditions = detail::read_flag_conditions(f, space, m, setup.device);
  resolve_energy(f.sampling, q ? std::optional((*q)->transform()) : std::nullopt);
  char details[256];
  std::snprintf(details, sizeof details, "init %s, %lld steps of size %g, noise %g, momentum %g, energy %s",
                start.word.c_str(), static_cast<long long>(f.sampling.steps), f.sampling.step(),
                f.sampling.noise_std, f.sampling.momentum, f.sampling.energy.c_str());
  setup.announce("sample", common, details);

  const auto energy = make_energy(f.sampling, m, setup.device);
  m.keep_only(setup.precision);  // the conditions and the score head's probe were the last float32 calls
  const auto opts = sampler_options_for(f.sampling, f.sampling.steps, common.seed, m.prior());
  auto bar = [&] { return tr0n::progress_bar("sampling").every(std::max<int64_t>(1, f.sampling.steps / 50)); };
  // One process, or this rank's share of the chains (rank 0 gathers them: tr0n/distributed/sample.hpp).
  auto sample_with = [&](auto& s, const detail::heap_trim& trim) {
#ifdef TR0N_WITH_DISTRIBUTED
    if (!group.alone())
      return root ? tr0n::distributed::sample(group, s, conditions, f.per_condition, bar(), trim)
                  : tr0n::distributed::sample(group, s, conditions, f.per_condition, trim);
#endif
    return s.sample(conditions, f.per_condition, bar(), trim);
  };
  auto r = with_sampler(start, m.generator, m.encoder, energy, q, opts, f.sampling, [&](auto& s) {
    const auto batches = detail::batching_for(f, s, conditions, latent_dim, m.example);
    s.set_options(tr0n::sampler_options(s.options()).max_batch(batches.max_batch));
    // Freed large blocks are kept for reuse up to what the budget leaves over a batch (none
    // without a measurement): fresh pages cost a third of a bfloat16 step at real size.
    if (mapped) tr0n::map_large_tensors(std::size_t{4} << 20, static_cast<std::size_t>(batches.spare_bytes));
    return sample_with(s, batches.trim);
  });
  if (!root) return 0;  // only rank 0 writes
  if (!common.image_shape.empty()) r.x = as_images(r.x, common.image_shape);
  tr0n::write_samples(f.out, r, conditions);
  detail::report_written(f.out, r);
  return 0;
}

}  // namespace tr0n_cli
