#pragma once
// The pre-trained models every Fashion-MNIST job shares, loaded from
// --models-dir or trained there on first use: the unconditional VAE (the
// generator), the auxiliary MLP classifier and the evaluation CNN, with their
// TorchScript copies. The class-label job and the text job read the same
// cache, so whichever runs first trains them for both.
#include "export.hpp"
#include "idx.hpp"
#include "models.hpp"

#include <tr0n/io/atomic_file.hpp>
#include <tr0n/runtime/threads.hpp>

#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fashion {

/// Training sizes of the shared models; `quick()` is the reduced set used by tests.
struct model_sizes {
  int64_t train_images = 60000, vae_epochs = 12, aux_epochs = 6, eval_epochs = 3, latent_dim = 16;
  static model_sizes full() { return {}; }
  static model_sizes quick() { return {.train_images = 12000, .vae_epochs = 6, .aux_epochs = 3, .eval_epochs = 2}; }
};

/// Where the models live: `<dir>/<prefix><name>.pt` (prefix "quick_" for quick sizes).
struct model_cache {
  std::filesystem::path dir;
  std::string prefix;
  std::filesystem::path path(const std::string& name) const { return dir / (prefix + name + ".pt"); }
  std::filesystem::path script_path(const std::string& name) const { return dir / (prefix + name + ".ts.pt"); }
};

/// Loads `module` from `path` if it exists, else trains it with `train` and
/// saves it atomically (a killed run leaves no half file to load next time).
template <class Module, class Train>
void load_or_train(Module& module, const std::filesystem::path& path, const std::string& what, Train&& train) {
  if (std::filesystem::exists(path)) {
    torch::load(module, path.string());
    std::fprintf(stderr, "%s: loaded %s\n", what.c_str(), path.c_str());
    return;
  }
  train();
  tr0n::write_file_atomically(path.string(), [&](std::ostream& out) { torch::save(module, out); });
  std::fprintf(stderr, "%s: trained and saved to %s\n", what.c_str(), path.c_str());
}

/// The three shared models, frozen and in eval mode.
struct pretrained {
  vae decoder{nullptr};
  mlp_classifier aux{nullptr};
  cnn_classifier judge{nullptr};
  vae_generator generator() const { return {decoder, tr0n::standard_normal(decoder->latent_dim)}; }
};

/// Loads or trains the VAE (images only, no labels), the auxiliary MLP and the
/// evaluation CNN (another architecture and seed, for scoring only), and writes
/// their TorchScript copies once. `train` is the labelled training split,
/// already cut to `sizes.train_images`.
inline pretrained load_pretrained(const model_cache& cache, const split& train, const model_sizes& sizes,
                                  uint64_t seed, int threads) {
  std::filesystem::create_directories(cache.dir);
  pretrained m;
  torch::manual_seed(seed);
  m.decoder = vae(sizes.latent_dim);
  load_or_train(m.decoder, cache.path("vae"), "generator (VAE, no labels)", [&] {
    m.decoder->train();
    fit(m.decoder->parameters(), train.images.size(0), sizes.vae_epochs, 128, 1e-3, "VAE",
        [&](const torch::Tensor& idx) { return m.decoder->loss(train.images.index_select(0, idx)); });
  });
  m.decoder->eval();
  for (auto& p : m.decoder->parameters()) p.requires_grad_(false);

  torch::manual_seed(seed + 1);
  m.aux = mlp_classifier();
  load_or_train(m.aux, cache.path("aux_classifier"), "auxiliary classifier (MLP)",
                [&] { fit_classifier(m.aux, train.images, train.labels, sizes.aux_epochs, "aux classifier"); });
  m.aux->eval();
  for (auto& p : m.aux->parameters()) p.requires_grad_(false);

  torch::manual_seed(seed + 1000);
  m.judge = cnn_classifier();
  load_or_train(m.judge, cache.path("eval_classifier"), "evaluation classifier (CNN)", [&] {
    const tr0n::thread_scope cnn(threads, tr0n::thread_workload::convolutions);
    fit_classifier(m.judge, train.images, train.labels, sizes.eval_epochs, "eval classifier");
  });
  m.judge->eval();

  if (!std::filesystem::exists(cache.script_path("generator"))) export_generator(m.decoder, cache.script_path("generator"));
  if (!std::filesystem::exists(cache.script_path("aux_classifier")))
    export_mlp_classifier(m.aux, cache.script_path("aux_classifier"));
  if (!std::filesystem::exists(cache.script_path("eval_classifier")))
    export_cnn_classifier(m.judge, cache.script_path("eval_classifier"));
  return m;
}

/// Loads the Fashion-MNIST splits from `dir`, cutting the training split to `train_images`.
inline std::pair<split, split> load_splits(const std::filesystem::path& dir, int64_t train_images) {
  auto train = load_split(dir, "train");
  auto test = load_split(dir, "t10k");
  if (train_images < train.images.size(0)) {
    train.images = train.images.narrow(0, 0, train_images);
    train.labels = train.labels.narrow(0, 0, train_images);
  }
  return {std::move(train), std::move(test)};
}

/// Sorts the jobs' step counts `T`, each once, and returns the T of their
/// single-T rows: the first T > 0, at most 20 (10 when there is none).
inline int64_t sort_steps(std::vector<int64_t>& steps) {
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  for (auto t : steps)
    if (t > 0) return std::min<int64_t>(t, 20);
  return 10;
}

/// `load_splits`, or none after one line naming `program` and the problem (a missing or damaged file).
inline std::optional<std::pair<split, split>> load_splits_or_say(const std::filesystem::path& dir, int64_t train_images,
                                                                 const char* program) {
  try {
    return load_splits(dir, train_images);
  } catch (const idx_error& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return std::nullopt;
  }
}

/// Seconds since `start`, for the jobs' timings.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// What a job starts from: the data, its output folder made, its clock started
/// and the shared models loaded (or trained).
struct job_start {
  split train, test;
  std::chrono::steady_clock::time_point clock;
  pretrained models;
};
/// The start of a job, or none after one line naming `program` and why.
inline std::optional<job_start> start_job(const std::filesystem::path& data_dir, const std::filesystem::path& out,
                                          const model_cache& cache, const model_sizes& sizes, uint64_t seed,
                                          int threads, const char* program) {
  auto data = load_splits_or_say(data_dir, sizes.train_images, program);
  if (!data) return std::nullopt;
  std::filesystem::create_directories(out);
  const auto clock = std::chrono::steady_clock::now();
  auto models = load_pretrained(cache, data->first, sizes, seed, threads);
  return job_start{std::move(data->first), std::move(data->second), clock, std::move(models)};
}

/// Loads translator `q` from `path`, or trains it zero-shot on (z, f(G(z)))
/// pairs with the jobs' settings (batches of 512 from a set of 64 pairs a
/// step, condition noise `sigma`, seed `seed`) and saves it there; prints the
/// NLL, the learned scale and any warning.
template <class Q, class G, class F>
void load_or_train_translator(Q& q, const std::filesystem::path& path, const std::string& what, G& generator,
                              F& encoder, int64_t steps, double sigma, uint64_t seed) {
  load_or_train(q, path, what, [&] {
    torch::AutoGradMode grad(true);
    auto report = tr0n::train_translator(q, generator, encoder,
                                         tr0n::translator_training_options()
                                             .steps(steps)
                                             .batch_size(512)
                                             .dataset_size(steps * 64)
                                             .condition_noise(sigma)
                                             .seed(seed),
                                         tr0n::progress_bar("translator").every(std::max<int64_t>(1, steps / 50)));
    std::fprintf(stderr, "translator: NLL %.3f, std %.3f to %.3f\n", report.nll(), report.std_min, report.std_max);
    for (const auto& w : report.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  });
  q->eval();
}

}  // namespace fashion
