#pragma once
/// \file
/// Box-restricted normal priors, as BigGAN's truncation trick uses them.
///  - `truncated_normal(d, r)`: N(0, I) conditioned on |z_i| <= r (exact
///    inverse-CDF sampling, normalised density).
///  - `clamped_normal(d, r)`: N(0, I) draws clamped into [-r, r]; it has point
///    masses on the faces, hence no density, only a box.
#include <tr0n/concepts/prior.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/random.hpp>

#include <torch/types.h>

#include <cstdint>
#include <cmath>
#include <limits>
#include <numbers>
#include <string_view>

namespace tr0n {
namespace detail {
inline void check_radius(double radius, std::string_view who) {
  if (!(radius > 0) || !std::isfinite(radius))
    fail(who, ": radius: expected a finite value > 0, got ", radius);
}
}  // namespace detail

class truncated_normal {
 public:
  truncated_normal(int64_t dim, double radius) : dim_(dim), radius_(radius) {
    detail::check_positive(dim, "truncated_normal: dim");
    detail::check_radius(radius, "truncated_normal");
  }

  int64_t dim() const noexcept { return dim_; }
  double radius() const noexcept { return radius_; }
  tr0n::box box() const noexcept { return {-radius_, radius_}; }

  torch::Tensor sample(int64_t n, torch::TensorOptions options = {}) const {
    // z = sqrt(2) erfinv(v), v uniform on (-erf(r/sqrt2), erf(r/sqrt2)).
    const double m = std::erf(radius_ / std::numbers::sqrt2);
    auto v = random::rand({n, dim_}, options).mul_(2.0 * m).sub_(m);
    return torch::erfinv(v).mul_(std::numbers::sqrt2).clamp_(-radius_, radius_);
  }

  torch::Tensor log_prob(const torch::Tensor& z) const {
    const double log_norm = std::log(std::erf(radius_ / std::numbers::sqrt2));
    auto inside = (z.abs() <= radius_).all(-1);
    auto lp = -0.5 * z.pow(2).sum(-1) -
              static_cast<double>(dim_) * (0.5 * std::log(2.0 * std::numbers::pi) + log_norm);
    return torch::where(inside, lp, torch::full_like(lp, -std::numeric_limits<double>::infinity()));
  }

 private:
  int64_t dim_;
  double radius_;
};

class clamped_normal {
 public:
  clamped_normal(int64_t dim, double radius) : dim_(dim), radius_(radius) {
    detail::check_positive(dim, "clamped_normal: dim");
    detail::check_radius(radius, "clamped_normal");
  }

  int64_t dim() const noexcept { return dim_; }
  double radius() const noexcept { return radius_; }
  tr0n::box box() const noexcept { return {-radius_, radius_}; }

  torch::Tensor sample(int64_t n, torch::TensorOptions options = {}) const {
    return random::randn({n, dim_}, options).clamp_(-radius_, radius_);
  }

 private:
  int64_t dim_;
  double radius_;
};

static_assert(PriorWithDensity<truncated_normal> && BoxedPrior<truncated_normal>);
static_assert(BoxedPrior<clamped_normal> && !PriorWithDensity<clamped_normal>);

}  // namespace tr0n
