#pragma once
// TorchScript copies of the job's models, for the `tr0n` tool and Python:
// each C++ module's weights go into a `torch::jit::Module` whose `forward` is
// written in TorchScript, then the copy is checked against the original.
#include "models.hpp"

#include <tr0n/io/atomic_file.hpp>

#include <torch/csrc/jit/api/module.h>
#include <torch/script.h>

#include <filesystem>
#include <string>
#include <utility>

namespace fashion {

namespace detail {
/// Registers the parameters of `linear` as `<name>_weight` and `<name>_bias`.
template <class Layer>
void copy_layer(torch::jit::Module& m, const std::string& name, Layer& layer) {
  m.register_parameter(name + "_weight", layer->weight.detach().clone(), /*is_buffer=*/false);
  m.register_parameter(name + "_bias", layer->bias.detach().clone(), /*is_buffer=*/false);
}

/// Saves `m` to `path` and fails unless it computes what `reference` does on `input`.
inline void save_checked(torch::jit::Module& m, const std::filesystem::path& path, const torch::Tensor& input,
                         const torch::Tensor& reference) {
  m.eval();
  torch::NoGradGuard no_grad;
  auto out = m.forward({input}).toTensor();
  if (!torch::allclose(out, reference, 1e-5, 1e-5))
    throw std::runtime_error("fashion_mnist: TorchScript copy " + path.string() + " differs from the C++ model");
  tr0n::write_file_atomically(path.string(), [&](std::ostream& out) { m.save(out); });
}
}  // namespace detail

/// The VAE's decoder `z [B, 16] -> images [B, 1, 28, 28]` in [0, 1].
inline void export_generator(vae& model, const std::filesystem::path& path) {
  torch::jit::Module m("fashion_vae_decoder");
  detail::copy_layer(m, "dec1", model->dec1);
  detail::copy_layer(m, "dec2", model->dec2);
  detail::copy_layer(m, "dec3", model->dec3);
  m.define(R"(
def forward(self, z):
    h = torch.relu(torch.linear(z, self.dec1_weight, self.dec1_bias))
    h = torch.relu(torch.linear(h, self.dec2_weight, self.dec2_bias))
    return torch.sigmoid(torch.linear(h, self.dec3_weight, self.dec3_bias)).view(-1, 1, 28, 28)
)");
  torch::NoGradGuard no_grad;
  auto z = torch::randn({8, model->latent_dim});
  detail::save_checked(m, path, z, model->decode(z));
}

/// A classifier `images [B, 1, 28, 28] -> logits [B, 10]` whose `layers`
/// are copied under their names and run by the TorchScript `forward` in `source`.
template <class Classifier, class... Layers>
void export_classifier(Classifier& model, const char* name, const std::filesystem::path& path, const std::string& source,
                       std::pair<const char*, Layers&>... layers) {
  torch::jit::Module m(name);
  (detail::copy_layer(m, layers.first, layers.second), ...);
  m.define(source);
  torch::NoGradGuard no_grad;
  model->eval();
  auto x = torch::rand({8, 1, 28, 28});
  detail::save_checked(m, path, x, model->forward(x));
}

/// The auxiliary MLP classifier.
inline void export_mlp_classifier(mlp_classifier& model, const std::filesystem::path& path) {
  using linear = std::pair<const char*, torch::nn::Linear&>;
  export_classifier(model, "fashion_mlp_classifier", path, R"(
def forward(self, x):
    h = torch.relu(torch.linear(x.reshape(x.size(0), 784), self.fc1_weight, self.fc1_bias))
    h = torch.relu(torch.linear(h, self.fc2_weight, self.fc2_bias))
    return torch.linear(h, self.fc3_weight, self.fc3_bias)
)", linear{"fc1", model->fc1}, linear{"fc2", model->fc2}, linear{"fc3", model->fc3});
}

/// The evaluation CNN.
inline void export_cnn_classifier(cnn_classifier& model, const std::filesystem::path& path) {
  using conv = std::pair<const char*, torch::nn::Conv2d&>;
  using linear = std::pair<const char*, torch::nn::Linear&>;
  export_classifier(model, "fashion_cnn_classifier", path, R"(
def forward(self, x):
    h = torch.max_pool2d(torch.relu(torch.conv2d(x, self.conv1_weight, self.conv1_bias, [1, 1], [1, 1])), [2, 2])
    h = torch.max_pool2d(torch.relu(torch.conv2d(h, self.conv2_weight, self.conv2_bias, [1, 1], [1, 1])), [2, 2])
    h = torch.relu(torch.linear(h.flatten(1), self.fc1_weight, self.fc1_bias))
    return torch.linear(h, self.fc2_weight, self.fc2_bias)
)", conv{"conv1", model->conv1}, conv{"conv2", model->conv2}, linear{"fc1", model->fc1}, linear{"fc2", model->fc2});
}

}  // namespace fashion
