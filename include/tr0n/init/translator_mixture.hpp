#pragma once
/// \file
/// `init::translator_mixture`: the official code's hybrid start. Each chain
/// starts from all `K` components of `q(z | c)` with per-dimension
/// mixture logits; the latent is the softmax-weighted sum of the means,
/// `z = sum_k softmax(pi)_k * mu_k` (per dimension). The means move by
/// Langevin dynamics and the logits by Adam (learning rate `lr`), jointly.
/// With `sample_components` (the default) each chain starts from one draw of
/// every component, so `n` chains per condition differ from the start; with it
/// off they start from the means exactly, as the official code does.
#include <tr0n/concepts/init_policy.hpp>
#include <tr0n/detail/unwrap.hpp>

#include <torch/optim/adam.h>
#include <torch/types.h>

#include <memory>
#include <string_view>

namespace tr0n {

struct mixture_state {
  torch::Tensor leaf;    ///< component means `[M, K, d]`
  torch::Tensor logits;  ///< per-dimension logits `[M, K, d]`
  std::shared_ptr<torch::optim::Adam> adam;
};

namespace init {

struct translator_mixture {
  static constexpr std::string_view name = "translator_mixture";
  static constexpr bool needs_translator = true;

  /// Adam learning rate for the logits.
  double lr = 0.05;
  /// Start from a draw of each component (true) or from its mean (false).
  bool sample_components = true;

  template <class S>
  mixture_state start(S& s, const torch::Tensor& c) const {
    torch::NoGradGuard no_grad;
    auto p = detail::unwrap(s.translator()).mixture(c);
    auto logits = p.logits.unsqueeze(-1).expand_as(p.means).clone().requires_grad_(true);
    auto means = p.means.clone();
    if (sample_components) means.add_(torch::randn_like(means) * p.log_std.exp());
    auto adam = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{logits},
                                                     torch::optim::AdamOptions(lr));
    return {means, logits, std::move(adam)};
  }

  torch::Tensor latent(const mixture_state& st) const {
    return (torch::softmax(st.logits, 1) * st.leaf).sum(1);
  }

  torch::Tensor& aux(mixture_state& st) const { return st.logits; }

  void update_aux(mixture_state& st, const torch::Tensor& grad) const {
    st.logits.mutable_grad() = grad;
    st.adam->step();
  }
};

}  // namespace init
}  // namespace tr0n
