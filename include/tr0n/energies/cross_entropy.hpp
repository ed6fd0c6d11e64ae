#pragma once
/// \file
/// `cross_entropy`: classifier conditioning. `f` returns logits `[B, C]`; the
/// condition is a distribution over classes `[B, C]` (one-hot for a class, or
/// soft) or class labels `[B]` (int64). E = -sum_k c_k log softmax(f(G(z)))_k.
///
/// Float conditions must be distributions: a row with a negative entry, or
/// one that does not sum to 1, is refused when sampling starts (logits or
/// scores passed by mistake would otherwise give an energy with no minimum,
/// or the wrong one). The sum is checked to 1e-3, well above float32
/// rounding of a softmax over thousands of classes (~1e-6).
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/check.hpp>

#include <torch/types.h>

#include <cstdint>
#include <string_view>
#include <tuple>

namespace tr0n {

struct cross_entropy {
  using tr0n_tag = energy_tag;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    auto log_p = torch::log_softmax(ctx.features(), -1);
    const auto& c = ctx.condition();
    if (!c.is_floating_point()) return -log_p.gather(-1, c.reshape({-1, 1})).squeeze(-1);
    return -(c * log_p).sum(-1);
  }

  /// Throws unless every float row is a distribution (labels pass).
  static void check_conditions(const torch::Tensor& c, std::string_view where) {
    if (!c.is_floating_point() || c.numel() == 0) return;
    torch::NoGradGuard no_grad;
    const auto rows = c.detach().reshape({c.size(0), -1}).to(torch::kCPU, torch::kFloat64);
    const auto lowest = std::get<0>(rows.min(-1)), sums = rows.sum(-1);
    const auto bad = (lowest < 0) | ((sums - 1).abs() > 1e-3);
    if (!bad.any().item<bool>()) return;
    const auto row = bad.nonzero()[0][0].item<int64_t>();
    detail::fail(where, ": cross_entropy expects each row to be a distribution over the classes (entries >= 0, "
                 "summing to 1), but row ", row, " has its lowest entry ", lowest[row].item<double>(),
                 " and sums to ", sums[row].item<double>(),
                 " (class labels: one_hot_conditions(labels, classes); logits: softmax them first)");
  }
};

static_assert(Energy<cross_entropy>);

}  // namespace tr0n
