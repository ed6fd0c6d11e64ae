#pragma once
// The Fashion-MNIST job's models, as the benchmarks load them: the VAE
// decoder (generator), the MLP classifier (the energy's f), the evaluation CNN
// and the softmax translator, frozen, from TR0N_MODELS_DIR (default: models/
// in the source tree, where the README's main command leaves them).
#include <fashion/models.hpp>

#include <torch/serialize.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace bench {

constexpr int64_t classes = 10, latent = 16;

struct models {
  fashion::vae decoder{latent};
  fashion::mlp_classifier aux;
  fashion::cnn_classifier judge;
  tr0n::mixture_translator translator{nullptr};
  std::string missing;

  models() {
    const std::filesystem::path dir = std::getenv("TR0N_MODELS_DIR") ? std::getenv("TR0N_MODELS_DIR") : TR0N_MODELS_DIR;
    const auto path = [&](const char* name) { return (dir / name).string(); };
    for (const char* name : {"vae.pt", "aux_classifier.pt", "eval_classifier.pt", "translator_softmax_k10_noise100.pt"})
      if (!std::filesystem::exists(path(name))) missing = path(name);
    if (!missing.empty()) return;
    torch::load(decoder, path("vae.pt"));
    torch::load(aux, path("aux_classifier.pt"));
    torch::load(judge, path("eval_classifier.pt"));
    std::ifstream in(path("translator_softmax_k10_noise100.pt"), std::ios::binary);
    translator = tr0n::load_mixture_translator(in, path("translator_softmax_k10_noise100.pt"));
    for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(decoder.get()), static_cast<torch::nn::Module*>(aux.get()),
                                 static_cast<torch::nn::Module*>(judge.get()),
                                 static_cast<torch::nn::Module*>(translator.get())}) {
      m->eval();
      for (auto& p : m->parameters()) p.requires_grad_(false);
    }
  }
  fashion::vae_generator generator() const { return {decoder, tr0n::standard_normal(latent)}; }
};
/// Loaded once; `missing` names a model file that is not there.
inline models& shared() {
  static models m;
  return m;
}

}  // namespace bench
