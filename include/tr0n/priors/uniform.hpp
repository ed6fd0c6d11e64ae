#pragma once
/// \file
/// `uniform(d, lo, hi)`: each coordinate uniform on [lo, hi].
#include <tr0n/concepts/prior.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/random.hpp>

#include <torch/types.h>

#include <cstdint>
#include <cmath>
#include <limits>

namespace tr0n {

class uniform {
 public:
  explicit uniform(int64_t dim, double lo = -1.0, double hi = 1.0) : dim_(dim), lo_(lo), hi_(hi) {
    detail::check_positive(dim, "uniform: dim");
    if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi))
      detail::fail("uniform: expected finite lo < hi, got lo = ", lo, ", hi = ", hi);
  }

  int64_t dim() const noexcept { return dim_; }
  tr0n::box box() const noexcept { return {lo_, hi_}; }

  torch::Tensor sample(int64_t n, torch::TensorOptions options = {}) const {
    return random::rand({n, dim_}, options).mul_(hi_ - lo_).add_(lo_);
  }

  torch::Tensor log_prob(const torch::Tensor& z) const {
    auto inside = ((z >= lo_) & (z <= hi_)).all(-1);
    // `0 * z` keeps the result on z's graph, so a weighted sum stays differentiable.
    auto lp = (z * 0.0).sum(-1) - static_cast<double>(dim_) * std::log(hi_ - lo_);
    return torch::where(inside, lp, torch::full_like(lp, -std::numeric_limits<double>::infinity()));
  }

 private:
  int64_t dim_;
  double lo_;
  double hi_;
};

static_assert(PriorWithDensity<uniform> && BoxedPrior<uniform>);

}  // namespace tr0n
