#pragma once
/// \file
/// `joint_prior(p1, p2, ...)`: independent priors over consecutive parts of
/// one latent, `z = [z1, z2, ...]`, for a generator with several latent
/// inputs (BigGAN's `G(z, y)`: a truncated normal for `z`, the class-embedding
/// table for `y`). The parts are a compile-time list (a Boost.Hana tuple), so
/// each part keeps its own type and nothing is erased.
///
/// - `dim()` is the sum of the parts' widths; `parts()` lists them, and
///   `tr0n::torchscript_generator` cuts a latent into that many inputs.
/// - `sample` draws each part in order and concatenates them.
/// - `log_prob`, when every part has a density, is the sum of the parts'.
/// - `bounds()`, when some part has a box: each part's box on its
///   coordinates, infinite on the others; the sampler clamps to it.
///
/// The translator and every start see one latent of width `dim()`.
///
/// ```
/// tr0n::joint_prior p(tr0n::truncated_normal(128, 2.0), tr0n::codebook_prior(table));
/// auto z = p.sample(8, torch::kFloat32);  // [8, 256]: z in [-2, 2]^128, then a table row
/// ```
#include <tr0n/concepts/prior.hpp>
#include <tr0n/detail/check.hpp>

#include <boost/hana/fold_left.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/tuple.hpp>
#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace tr0n {

namespace detail {
/// `values[i]` on part `i`'s coordinates: one `[sum(widths)]` tensor of `dtype`.
inline torch::Tensor part_values(const std::vector<int64_t>& widths, const std::vector<double>& values,
                                 torch::ScalarType dtype) {
  std::vector<torch::Tensor> pieces;
  for (size_t i = 0; i < widths.size(); ++i) pieces.push_back(torch::full({widths[i]}, values[i], dtype));
  return torch::cat(pieces);
}
}  // namespace detail

/// Per-coordinate bounds of a latent of parts `widths`, part `i` in `boxes[i]`
/// (infinite sides for a part without a box).
inline box_bounds part_bounds(const std::vector<int64_t>& widths, const std::vector<tr0n::box>& boxes) {
  std::vector<double> lo, hi;
  for (const auto& b : boxes) lo.push_back(b.lo), hi.push_back(b.hi);
  return {detail::part_values(widths, lo, torch::kFloat64), detail::part_values(widths, hi, torch::kFloat64)};
}

/// Per-coordinate step multipliers for a latent of parts `widths`: `scales[i]`
/// on part `i`'s coordinates (for `sampler_options::step_scale`).
inline torch::Tensor part_scales(const std::vector<int64_t>& widths, const std::vector<double>& scales) {
  if (widths.size() != scales.size())
    detail::fail("part_scales: expected one multiplier per part (", widths.size(), "), got ", scales.size());
  return detail::part_values(widths, scales, torch::kFloat32);
}

template <Prior... Parts>
  requires(sizeof...(Parts) >= 1)
class joint_prior {
 public:
  explicit joint_prior(Parts... parts) : parts_(std::move(parts)...) {}

  int64_t dim() const {
    return boost::hana::fold_left(parts_, int64_t{0},
                                  [](int64_t acc, const auto& p) { return acc + static_cast<int64_t>(p.dim()); });
  }

  std::vector<int64_t> parts() const {
    std::vector<int64_t> widths;
    boost::hana::for_each(parts_, [&](const auto& p) { widths.push_back(static_cast<int64_t>(p.dim())); });
    return widths;
  }

  torch::Tensor sample(int64_t n, torch::TensorOptions options = {}) const {
    std::vector<torch::Tensor> draws;
    boost::hana::for_each(parts_, [&](const auto& p) { draws.push_back(p.sample(n, options)); });
    return torch::cat(draws, 1);
  }

  torch::Tensor log_prob(const torch::Tensor& z) const
    requires(PriorWithDensity<Parts> && ...)
  {
    torch::Tensor total;
    each_slice(z, [&](const auto& p, const torch::Tensor& part) {
      auto lp = p.log_prob(part);
      total = total.defined() ? total + lp : lp;
    });
    return total;
  }

  box_bounds bounds() const
    requires(BoxedPrior<Parts> || ...)
  {
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<tr0n::box> boxes;
    boost::hana::for_each(parts_, [&](const auto& p) {
      if constexpr (BoxedPrior<std::remove_cvref_t<decltype(p)>>) {
        boxes.push_back(p.box());
      } else {
        boxes.push_back({-inf, inf});
      }
    });
    return part_bounds(parts(), boxes);
  }

  const boost::hana::tuple<Parts...>& part_priors() const noexcept { return parts_; }

 private:
  /// `f(part prior, z's columns of that part)`, part by part.
  template <class F>
  void each_slice(const torch::Tensor& z, F&& f) const {
    int64_t first = 0;
    boost::hana::for_each(parts_, [&](const auto& p) {
      const auto width = static_cast<int64_t>(p.dim());
      f(p, z.narrow(-1, first, width));
      first += width;
    });
  }

  boost::hana::tuple<Parts...> parts_;
};

}  // namespace tr0n
