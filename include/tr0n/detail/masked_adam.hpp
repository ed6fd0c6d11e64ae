#pragma once
// Private: Adam whose step can be skipped on the device. A step whose loss was
// non-finite must leave parameters and moments exactly as they were, and the
// trainer must not synchronise with the host to find out: every update is
// `where(ok, new, old)` and the step count is a tensor. Same update as
// torch::optim::Adam (no weight decay, no amsgrad) otherwise.
#include <torch/types.h>

#include <cstddef>
#include <utility>
#include <vector>

namespace tr0n::detail {

struct adam_group {
  std::vector<torch::Tensor> params;
  double lr;  ///< base rate; the trainer scales it by the schedule's factor
};

class masked_adam {
 public:
  masked_adam(std::vector<adam_group> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
      : groups_(std::move(groups)), beta1_(beta1), beta2_(beta2), eps_(eps) {
    for (const auto& g : groups_)
      for (const auto& p : g.params) {
        m_.push_back(torch::zeros_like(p, p.options().requires_grad(false)));
        v_.push_back(torch::zeros_like(p, p.options().requires_grad(false)));
      }
    if (!m_.empty()) t_ = torch::zeros({}, m_.front().options().dtype(torch::kFloat64));
  }

  void zero_grad() {
    for (auto& g : groups_)
      for (auto& p : g.params)
        if (p.grad().defined()) p.mutable_grad().zero_();
  }

  /// One step at `factor * lr` per group, taken only where `ok` (a bool scalar tensor) is true.
  void step(const torch::Tensor& ok, double factor) {
    torch::NoGradGuard no_grad;
    t_ = t_ + ok.to(t_.dtype());
    const auto bc1 = 1 - torch::pow(beta1_, t_), bc2 = 1 - torch::pow(beta2_, t_);
    size_t i = 0;
    for (auto& g : groups_) {
      for (auto& p : g.params) {
        auto& m = m_[i];
        auto& v = v_[i];
        ++i;
        if (!p.grad().defined()) continue;
        const auto grad = p.grad();
        m.copy_(torch::where(ok, m * beta1_ + grad * (1 - beta1_), m));
        v.copy_(torch::where(ok, v * beta2_ + grad * grad * (1 - beta2_), v));
        auto update = (m / bc1.to(m.dtype())) / ((v / bc2.to(v.dtype())).sqrt() + eps_) * (g.lr * factor);
        p.sub_(torch::where(ok, update, torch::zeros_like(update)));
      }
    }
  }

  /// The state, for checkpoints: first and second moments per parameter (in
  /// group order) and the step count (a float64 scalar).
  std::vector<torch::Tensor>& first_moments() { return m_; }
  std::vector<torch::Tensor>& second_moments() { return v_; }
  torch::Tensor& step_count() { return t_; }

 private:
  std::vector<adam_group> groups_;
  std::vector<torch::Tensor> m_, v_;
  torch::Tensor t_;
  double beta1_, beta2_, eps_;
};

}  // namespace tr0n::detail
