#pragma once
/// \file
/// Zero-shot translator training, the paper's Algorithm 1: draw `z ~ p(z)`,
/// compute `c = T(f(G(z)))` without gradients, and maximise `log q(z | c)`.
/// No real data is involved.
///
/// ```
/// auto opts = tr0n::translator_training_options().steps(5000).batch_size(256)
///                 .transform(tr0n::condition_transform::softmax);
/// auto report = tr0n::train_translator(q, generator, classifier, opts, tr0n::progress_bar("translator"));
/// ```
#include <tr0n/concepts/callback.hpp>
#include <tr0n/concepts/encoder.hpp>
#include <tr0n/concepts/generator.hpp>
#include <tr0n/concepts/translator.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/fit.hpp>
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/training/condition_transform.hpp>

#include <range/v3/action/shuffle.hpp>
#include <range/v3/range/conversion.hpp>
#include <range/v3/view/iota.hpp>
#include <torch/optim/adam.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <random>
#include <vector>

namespace tr0n {

struct translator_training_options {
  /// Optimiser steps.
  TORCH_ARG(int64_t, steps) = 2000;
  /// Pairs per step.
  TORCH_ARG(int64_t, batch_size) = 256;
  /// Adam's initial learning rate, decayed along a cosine to `lr_min`.
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, lr_min) = 0.0;
  /// Global gradient-norm clipping; 0 turns it off.
  TORCH_ARG(double, grad_clip) = 1.0;
  /// Std of Gaussian noise added to the conditions during training (the
  /// paper's bridge from CLIP image embeddings to text embeddings); 0 = none.
  TORCH_ARG(double, condition_noise) = 0.0;
  /// Map from encoder output to condition space.
  TORCH_ARG(condition_transform, transform) = condition_transform::none;
  /// 0: fresh pairs every step. N > 0: N pairs generated once, then reused over
  /// shuffled epochs.
  TORCH_ARG(int64_t, dataset_size) = 0;
  /// Makes training reproducible (seeds the global LibTorch generator).
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;

 public:
  void validate() const {
    detail::check_positive(steps_, "translator_training_options: steps");
    detail::check_positive(batch_size_, "translator_training_options: batch_size");
    if (!(lr_ > 0) || !std::isfinite(lr_))
      detail::fail("translator_training_options: lr: expected a finite value > 0, got ", lr_);
    if (!(lr_min_ >= 0) || lr_min_ > lr_)
      detail::fail("translator_training_options: lr_min: expected 0 <= lr_min <= lr = ", lr_, ", got ",
                   lr_min_);
    if (!(grad_clip_ >= 0))
      detail::fail("translator_training_options: grad_clip: expected >= 0, got ", grad_clip_);
    if (!(condition_noise_ >= 0))
      detail::fail("translator_training_options: condition_noise: expected >= 0, got ", condition_noise_);
    if (dataset_size_ < 0)
      detail::fail("translator_training_options: dataset_size: expected >= 0 (0 = fresh pairs), got ",
                   dataset_size_);
  }
};

struct training_report {
  torch::Tensor losses;  ///< `[steps_done]`, on the CPU, float64
  int64_t steps_done = 0;
  double final_loss() const { return losses.numel() ? losses[-1].item<double>() : NAN; }
};

namespace detail {

/// Pairs `(z, c)` with `z ~ p(z)`, `c = T(f(G(z)))`, generated without gradients.
template <class G, class F>
std::pair<torch::Tensor, torch::Tensor> make_pairs(G& generator, F& encoder, int64_t n,
                                                   torch::TensorOptions options, condition_transform t,
                                                   int64_t expected_width) {
  torch::NoGradGuard no_grad;
  auto& g = unwrap(generator);
  auto z = g.prior().sample(n, options);
  auto c = apply(t, unwrap(encoder).forward(g.forward(z))).to(options.dtype());
  if (c.dim() != 2 || c.size(1) != expected_width)
    fail("train_translator: encoder: produced features of shape ", shape_of(c),
         " but the translator expects conditions of width ", expected_width);
  return {z, c};
}

/// Global-norm clipping without a host sync.
inline void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().pow(2).sum());
  if (norms.empty()) return;
  auto total = torch::stack(norms).sum().sqrt();
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : params)
    if (p.grad().defined()) p.mutable_grad().mul_(coef);
}

}  // namespace detail

template <TrainableTranslator T, Generator G, Encoder F, Callback... Cbs>
training_report train_translator(T& translator, G& generator, F& encoder,
                                 const translator_training_options& options, Cbs&&... callbacks) {
  options.validate();
  auto& q = detail::unwrap(translator);
  const auto& prior = detail::unwrap(generator).prior();
  detail::check_translator_fits(translator, prior, encoder, "train_translator");
  auto params = q.parameters();
  if (params.empty()) detail::fail("train_translator: translator: has no parameters to train");
  const auto tensor_options = params.front().options().requires_grad(false);

  if (options.seed()) torch::manual_seed(*options.seed());
  std::mt19937_64 rng(options.seed().value_or(std::random_device{}()));

  torch::AutoGradMode grad_mode(true);
  q.train(true);
  torch::optim::Adam adam(params, torch::optim::AdamOptions(options.lr()));

  // Synthetic set mode: pairs made once, indices reshuffled every epoch.
  torch::Tensor set_z, set_c;
  std::vector<int64_t> order;
  size_t cursor = 0;
  if (options.dataset_size() > 0) {
    std::vector<torch::Tensor> zs, cs;
    for (int64_t done = 0; done < options.dataset_size(); done += options.batch_size()) {
      const auto n = std::min(options.batch_size(), options.dataset_size() - done);
      auto [z, c] = detail::make_pairs(generator, encoder, n, tensor_options, options.transform(),
                                       q.condition_dim());
      zs.push_back(z);
      cs.push_back(c);
    }
    set_z = torch::cat(zs);
    set_c = torch::cat(cs);
    order = ranges::views::iota(int64_t{0}, options.dataset_size()) | ranges::to<std::vector>();
    cursor = order.size();
  }
  auto next_batch = [&]() -> std::pair<torch::Tensor, torch::Tensor> {
    if (options.dataset_size() == 0)
      return detail::make_pairs(generator, encoder, options.batch_size(), tensor_options,
                                options.transform(), q.condition_dim());
    std::vector<int64_t> picked;
    picked.reserve(static_cast<size_t>(options.batch_size()));
    while (static_cast<int64_t>(picked.size()) < options.batch_size()) {
      if (cursor == order.size()) {
        order |= ranges::actions::shuffle(rng);
        cursor = 0;
      }
      picked.push_back(order[cursor++]);
    }
    auto idx = torch::tensor(picked, torch::TensorOptions(torch::kLong)).to(set_z.device());
    return {set_z.index_select(0, idx), set_c.index_select(0, idx)};
  };

  std::vector<torch::Tensor> losses;
  losses.reserve(static_cast<size_t>(options.steps()));
  const run_info begin{"train", options.steps(), 0};
  detail::notify_begin(begin, callbacks...);
  for (int64_t step = 0; step < options.steps(); ++step) {
    const double progress = static_cast<double>(step) / static_cast<double>(options.steps());
    const double lr = options.lr_min() +
                      0.5 * (options.lr() - options.lr_min()) * (1.0 + std::cos(std::numbers::pi * progress));
    for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);

    auto [z, c] = next_batch();
    if (options.condition_noise() > 0) c = c + options.condition_noise() * torch::randn_like(c);
    auto loss = -q.log_prob(z, c).mean();
    adam.zero_grad();
    loss.backward();
    if (options.grad_clip() > 0) detail::clip_grad_norm(params, options.grad_clip());
    adam.step();

    auto detached = loss.detach();
    losses.push_back(detached);
    if (detail::notify_step(step_info{"train", step, options.steps(), detached}, callbacks...)) break;
  }
  q.train(false);
  training_report report{torch::stack(losses).to(torch::kCPU, torch::kFloat64),
                         static_cast<int64_t>(losses.size())};
  detail::notify_end(run_info{"train", options.steps(), report.steps_done}, callbacks...);
  return report;
}

}  // namespace tr0n
