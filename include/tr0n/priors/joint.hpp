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
#include <utility>
#include <vector>

namespace tr0n {

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
    std::vector<torch::Tensor> lo, hi;
    boost::hana::for_each(parts_, [&](const auto& p) {
      const auto o = torch::TensorOptions(torch::kFloat64);
      if constexpr (BoxedPrior<std::remove_cvref_t<decltype(p)>>) {
        lo.push_back(torch::full({p.dim()}, p.box().lo, o));
        hi.push_back(torch::full({p.dim()}, p.box().hi, o));
      } else {
        lo.push_back(torch::full({p.dim()}, -inf, o));
        hi.push_back(torch::full({p.dim()}, inf, o));
      }
    });
    return {torch::cat(lo), torch::cat(hi)};
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
