#pragma once
// Problems several test folders share: a classifier with a translator trained
// zero-shot on it, and energies that fail on purpose.
#include "support/toy_models.hpp"

#include <cmath>
#include <memory>

namespace tr0n_test {

/// A nonlinear generator, a small classifier and a translator trained zero-shot on them.
struct classifier_problem {
  static constexpr int64_t d = 8, classes = 5;
  mlp_generator g{d, 32, 16};
  linear_classifier f{16, classes, 3.0};
  tr0n::mixture_translator q{tr0n::mixture_translator_options(classes, d).components(4).transform(tr0n::condition_transform::softmax)};

  classifier_problem() {
    torch::manual_seed(3);
    g = mlp_generator(d, 32, 16);
    f = linear_classifier(16, classes, 3.0);
    q = tr0n::mixture_translator(tr0n::mixture_translator_options(classes, d).components(4).transform(tr0n::condition_transform::softmax));
    tr0n::train_translator(q, g, f, tr0n::translator_training_options().steps(1500).batch_size(256).lr(3e-3).seed(5));
  }

  torch::Tensor conditions() const { return tr0n::one_hot_conditions(torch::arange(classes), classes); }
};

/// The classifier problem, trained once per process.
inline classifier_problem& problem() {
  static classifier_problem p;
  return p;
}

/// |f(G(z)) - c|^2, turning NaN at call `fail_at` (and after) for chains whose
/// condition has c_0 > 0.5; keeps the latents it saw then.
struct fails_mid_run {
  using tr0n_tag = tr0n::energy_tag;
  int fail_at = 3;
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  std::shared_ptr<torch::Tensor> z_at_failure = std::make_shared<torch::Tensor>();
  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    auto e = (ctx.features() - ctx.condition()).pow(2).sum(-1);
    if ((*calls)++ < fail_at) return e;
    if (!z_at_failure->defined()) *z_at_failure = ctx.z().detach().clone();
    return torch::where(ctx.condition().select(1, 0) > 0.5, torch::full_like(e, NAN), e);
  }
};

}  // namespace tr0n_test
