#pragma once
/// \file
/// `standard_normal`: p(z) = N(0, I_d), the prior of VAEs and most GANs.
#include <tr0n/concepts/prior.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/random.hpp>

#include <torch/types.h>

#include <cstdint>
#include <cmath>
#include <numbers>

namespace tr0n {

class standard_normal {
 public:
  explicit standard_normal(int64_t dim) : dim_(dim) { detail::check_positive(dim, "standard_normal: dim"); }

  int64_t dim() const noexcept { return dim_; }
  torch::Tensor sample(int64_t n, torch::TensorOptions options = {}) const {
    return random::randn({n, dim_}, options);
  }
  torch::Tensor log_prob(const torch::Tensor& z) const {
    return -0.5 * z.pow(2).sum(-1) - 0.5 * static_cast<double>(dim_) * std::log(2.0 * std::numbers::pi);
  }

 private:
  int64_t dim_;
};

static_assert(PriorWithDensity<standard_normal>);

}  // namespace tr0n
