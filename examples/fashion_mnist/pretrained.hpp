#pragma once
// The pre-trained models every Fashion-MNIST job shares, loaded from
// --models-dir or trained there on first use: the unconditional VAE (the
// generator), the auxiliary MLP classifier and the evaluation CNN, with their
// TorchScript copies. The class-label job and the text job read the same
// cache, so whichever runs first trains them for both.
#include "export.hpp"
#include "idx.hpp"
#include "models.hpp"

#include <tr0n/adapters/atomic_file.hpp>
#include <tr0n/runtime/threads.hpp>

#include <torch/serialize.h>

#include <cstdio>
#include <filesystem>
#include <string>

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

}  // namespace fashion
