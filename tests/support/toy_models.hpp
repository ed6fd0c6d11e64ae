#pragma once
// Small models with known answers, shared by the tests.
#include <tr0n.hpp>

#include <torch/nn/modules/linear.h>

#include <cstdlib>

namespace tr0n_test {

/// The device of the tests that can run on any: TR0N_TEST_DEVICE (cpu, cuda, cuda:1, ...), cpu by default.
inline torch::Device test_device() {
  const char* name = std::getenv("TR0N_TEST_DEVICE");
  return torch::Device(name && *name ? name : "cpu");
}

/// G(z) = z A^T + b, with a standard normal prior.
struct linear_generator {
  using tr0n_tag = tr0n::generator_tag;
  torch::Tensor a, b;
  tr0n::standard_normal p;
  torch::Tensor forward(const torch::Tensor& z) { return torch::matmul(z, a.t()) + b; }
  const tr0n::standard_normal& prior() const { return p; }
};

/// f(x) = x W^T.
struct linear_encoder {
  using tr0n_tag = tr0n::encoder_tag;
  torch::Tensor w;
  torch::Tensor forward(const torch::Tensor& x) { return torch::matmul(x, w.t()); }
  int64_t condition_dim() const { return w.size(0); }
};

/// A nonlinear generator: a fixed random two-layer tanh MLP.
struct mlp_generator_impl : torch::nn::Module {
  using tr0n_tag = tr0n::generator_tag;
  mlp_generator_impl(int64_t d, int64_t width, int64_t out)
      : l1(register_module("l1", torch::nn::Linear(d, width))),
        l2(register_module("l2", torch::nn::Linear(width, out))),
        p(d) {
    for (auto& t : parameters()) t.requires_grad_(false);
  }
  torch::Tensor forward(const torch::Tensor& z) { return l2(torch::tanh(l1(z * 1.5))); }
  const tr0n::standard_normal& prior() const { return p; }
  torch::nn::Linear l1, l2;
  tr0n::standard_normal p;
};
TORCH_MODULE_IMPL(mlp_generator, mlp_generator_impl);

/// A small fixed classifier (linear logits, sharpened).
struct linear_classifier_impl : torch::nn::Module {
  using tr0n_tag = tr0n::encoder_tag;
  linear_classifier_impl(int64_t in, int64_t classes, double scale)
      : fc(register_module("fc", torch::nn::Linear(in, classes))), scale(scale) {
    for (auto& t : parameters()) t.requires_grad_(false);
  }
  torch::Tensor forward(const torch::Tensor& x) { return scale * fc(x); }
  int64_t condition_dim() const { return fc->options.out_features(); }
  torch::nn::Linear fc;
  double scale;
};
TORCH_MODULE_IMPL(linear_classifier, linear_classifier_impl);

/// The identity, as generator (with a given prior) or encoder.
struct identity_encoder {
  using tr0n_tag = tr0n::encoder_tag;
  int64_t dim;
  torch::Tensor forward(const torch::Tensor& x) { return x; }
  int64_t condition_dim() const { return dim; }
};

}  // namespace tr0n_test
