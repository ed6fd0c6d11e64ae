#pragma once
// The pre-trained models of the Fashion-MNIST job, trained here on first run:
// an unconditional VAE (the generator, trained without labels), an MLP
// classifier (the auxiliary model f of the energy) and a CNN classifier of a
// different architecture and seed (used only to score results).
#include <tr0n.hpp>

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/optim/adam.h>

#include <functional>
#include <string>
#include <vector>

namespace fashion {


struct vae_impl : torch::nn::Module {
  explicit vae_impl(int64_t latent_dim)
      : enc1(register_module("enc1", torch::nn::Linear(784, 512))),
        enc2(register_module("enc2", torch::nn::Linear(512, 256))),
        mu(register_module("mu", torch::nn::Linear(256, latent_dim))),
        log_var(register_module("log_var", torch::nn::Linear(256, latent_dim))),
        dec1(register_module("dec1", torch::nn::Linear(latent_dim, 256))),
        dec2(register_module("dec2", torch::nn::Linear(256, 512))),
        dec3(register_module("dec3", torch::nn::Linear(512, 784))),
        latent_dim(latent_dim) {}

  torch::Tensor decode_logits(const torch::Tensor& z) {
    return dec3(torch::relu(dec2(torch::relu(dec1(z)))));
  }
  /// Images [B, 1, 28, 28] in [0, 1].
  torch::Tensor decode(const torch::Tensor& z) { return torch::sigmoid(decode_logits(z)).view({-1, 1, 28, 28}); }

  /// Negative ELBO per image (Bernoulli likelihood), averaged over the batch.
  torch::Tensor loss(const torch::Tensor& x) {
    auto flat = x.view({x.size(0), 784});
    auto h = torch::relu(enc2(torch::relu(enc1(flat))));
    auto m = mu(h), lv = log_var(h);
    auto z = m + torch::randn_like(m) * (0.5 * lv).exp();
    auto rec = torch::binary_cross_entropy_with_logits(decode_logits(z), flat, {}, {}, at::Reduction::None).sum(1);
    auto kl = 0.5 * (m.pow(2) + lv.exp() - lv - 1).sum(1);
    return (rec + kl).mean();
  }

  torch::nn::Linear enc1, enc2, mu, log_var, dec1, dec2, dec3;
  int64_t latent_dim;
};
TORCH_MODULE_IMPL(vae, vae_impl);

/// The VAE's decoder as a tr0n generator with its standard-normal prior.
struct vae_generator {
  using tr0n_tag = tr0n::generator_tag;
  vae model;
  tr0n::standard_normal p;
  tr0n::lowered_copies<vae> lowered{};
  torch::Tensor forward(const torch::Tensor& z) { return model->decode(z); }
  torch::Tensor forward(const torch::Tensor& z, tr0n::precision precision) {
    return lowered
        .get(precision,
             [&](torch::ScalarType t) {
               vae copy(model->latent_dim);
               tr0n::copy_lowered(*model, *copy, t);
               return copy;
             })
        ->decode(z);
  }
  const tr0n::standard_normal& prior() const { return p; }
};

/// The auxiliary classifier f: an MLP returning logits.
struct mlp_classifier_impl : torch::nn::Module {
  using tr0n_tag = tr0n::encoder_tag;
  mlp_classifier_impl()
      : fc1(register_module("fc1", torch::nn::Linear(784, 512))),
        fc2(register_module("fc2", torch::nn::Linear(512, 256))),
        fc3(register_module("fc3", torch::nn::Linear(256, 10))),
        drop(register_module("drop", torch::nn::Dropout(0.2))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = drop(torch::relu(fc1(x.reshape({x.size(0), 784}))));
    return fc3(drop(torch::relu(fc2(h))));
  }
  /// At bf16, runs a copy with its matrices in bfloat16 (made once; the model
  /// is frozen while it samples).
  torch::Tensor forward(const torch::Tensor& x, tr0n::precision precision) {
    auto& copy = lowered.get(precision, [&](torch::ScalarType t) {
      auto c = std::make_shared<mlp_classifier_impl>();
      tr0n::copy_lowered(*this, *c, t);
      return c;
    });
    copy->train(is_training());
    return copy->forward(x);
  }
  int64_t condition_dim() const { return 10; }
  torch::nn::Linear fc1, fc2, fc3;
  torch::nn::Dropout drop;
  tr0n::lowered_copies<std::shared_ptr<mlp_classifier_impl>> lowered;
};
TORCH_MODULE_IMPL(mlp_classifier, mlp_classifier_impl);

/// The evaluation classifier: a small CNN; `features` is its penultimate layer.
struct cnn_classifier_impl : torch::nn::Module {
  cnn_classifier_impl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)))),
        fc1(register_module("fc1", torch::nn::Linear(64 * 7 * 7, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 10))),
        drop(register_module("drop", torch::nn::Dropout(0.3))) {}
  torch::Tensor features(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(conv1(x)), 2);
    h = torch::max_pool2d(torch::relu(conv2(h)), 2);
    return torch::relu(fc1(h.flatten(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(drop(features(x))); }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
  torch::nn::Dropout drop;
};
TORCH_MODULE_IMPL(cnn_classifier, cnn_classifier_impl);

/// Minibatch Adam over `n` examples for `epochs`, with a progress bar.
inline void fit(std::vector<torch::Tensor> params, int64_t n, int64_t epochs, int64_t batch, double lr,
                const std::string& label, const std::function<torch::Tensor(const torch::Tensor&)>& batch_loss) {
  torch::optim::Adam adam(std::move(params), torch::optim::AdamOptions(lr));
  const int64_t per_epoch = (n + batch - 1) / batch, total = per_epoch * epochs;
  tr0n::progress_bar bar(label);
  bar.every(std::max<int64_t>(1, total / 50));
  bar.on_begin({"train", total, 0});
  int64_t step = 0;
  for (int64_t e = 0; e < epochs; ++e) {
    auto order = torch::randperm(n, torch::kLong);
    for (int64_t start = 0; start < n; start += batch, ++step) {
      auto idx = order.narrow(0, start, std::min(batch, n - start));
      auto loss = batch_loss(idx);
      adam.zero_grad();
      loss.backward();
      adam.step();
      bar.on_step({"train", step, total, loss.detach()});
    }
  }
  bar.on_end({"train", total, step});
}

/// Supervised training of a classifier on labelled images (cross-entropy, Adam).
template <class Classifier>
void fit_classifier(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels, int64_t epochs,
                    const std::string& label) {
  model->train();
  fit(model->parameters(), images.size(0), epochs, 128, 1e-3, label, [&](const torch::Tensor& idx) {
    return torch::cross_entropy_loss(model->forward(images.index_select(0, idx)), labels.index_select(0, idx));
  });
}

/// `fn` applied to `images` in batches of 1000 without gradients, results concatenated.
template <class Fn>
torch::Tensor in_batches(const torch::Tensor& images, Fn&& fn) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < images.size(0); s += 1000)
    parts.push_back(fn(images.narrow(0, s, std::min<int64_t>(1000, images.size(0) - s))));
  return torch::cat(parts);
}

/// Accuracy of a classifier's logits on labelled images.
template <class Classifier>
double accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels) {
  model->eval();
  auto predicted = in_batches(images, [&](const torch::Tensor& x) { return model->forward(x).argmax(1); });
  return (predicted == labels).to(torch::kFloat64).mean().template item<double>();
}

}  // namespace fashion
