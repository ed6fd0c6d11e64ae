#pragma once
/// \file
/// `init::translator_mixture`: the official code's hybrid start. Each chain
/// starts from all `K` components of `q(z | c)` with per-dimension
/// mixture logits; the latent is the softmax-weighted sum of the means,
/// `z = sum_k softmax(pi)_k * mu_k` (per dimension). The means move by
/// Langevin dynamics and the logits by Adam, jointly.
///
/// The defaults are the official code's (`scripts/run_script_eval_*.sh`):
/// logit Adam at `lr = 5e-3`, logit gradients clipped to norm 1 per chain
/// (`clip_grad_norm_` on a batch of one), and chains that start from the
/// component means exactly. Run it with the official dynamics too:
/// `sampler_options().steps(100).momentum(0.99).grad_clip(1)` and
/// `fixed_noise{0.01}`.
///
/// What it is for: the hybrid *optimises* one output per condition. Its `n`
/// chains of one condition start at the same point and differ only by the
/// Langevin noise; averaging means in latent space also blurs the images of
/// a multimodal translator. It makes no claim of diversity: for several
/// different samples per condition use `translator_sample`.
/// `sample_components = true` starts each chain from one draw of every
/// component instead (more spread, no longer the official behaviour).
#include <tr0n/concepts/init_policy.hpp>
#include <tr0n/detail/math.hpp>
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/random.hpp>

#include <torch/optim/adam.h>
#include <torch/types.h>

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

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
  static constexpr bool needs_mixture = true;

  /// Adam learning rate for the logits.
  double lr = 5e-3;
  /// Per-chain norm clipping of the logits' gradient; 0 turns it off.
  double clip_grad = 1.0;
  /// Start from a draw of each component (true) or from its mean (false, official).
  bool sample_components = false;

  template <class S>
  mixture_state start(S& s, const torch::Tensor& c) const {
    torch::NoGradGuard no_grad;
    auto p = detail::unwrap(s.translator()).mixture(c);
    auto logits = p.logits.unsqueeze(-1).expand_as(p.means).clone().requires_grad_(true);
    auto means = p.means.clone();
    if (sample_components) means.add_(random::randn_like(means) * p.log_std.exp());
    auto adam = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{logits},
                                                     torch::optim::AdamOptions(lr));
    return {means, logits, std::move(adam)};
  }

  torch::Tensor latent(const mixture_state& st) const {
    return (torch::softmax(st.logits, 1) * st.leaf).sum(1);
  }

  torch::Tensor& aux(mixture_state& st) const { return st.logits; }

  void update_aux(mixture_state& st, const torch::Tensor& grad) const {
    st.logits.mutable_grad() = clip_grad > 0 ? detail::clip_rows(grad, clip_grad, 1e-6) : grad;
    st.adam->step();
  }
};

}  // namespace init
}  // namespace tr0n
