#pragma once
/// \file
/// Semantic interpolation between two conditions (the paper's interpolation
/// figure): spherical interpolation of their directions, linear interpolation
/// of their norms. Sampling along the path gives images that morph from one
/// condition to the other.
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/math.hpp>

#include <torch/types.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tr0n {

/// The point at fraction `t` in [0, 1] on the path from `a` to `b` (`[C]` or `[N, C]`).
inline torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t) {
  if (a.sizes() != b.sizes())
    detail::fail("slerp: a and b must have the same shape, got ", detail::shape_of(a), " and ", detail::shape_of(b));
  if (!(t >= 0 && t <= 1)) detail::fail("slerp: t: expected a value in [0, 1], got ", t);
  auto na = a.norm(2, -1, true), nb = b.norm(2, -1, true);
  auto ua = a / na.clamp_min(1e-12), ub = b / nb.clamp_min(1e-12);
  auto omega = (ua * ub).sum(-1, true).clamp(-1, 1).acos();
  auto so = omega.sin();
  // Nearly parallel directions: fall back to linear interpolation of the directions.
  auto small = so.abs() < 1e-6;
  auto wa = torch::where(small, torch::full_like(so, 1 - t), ((1 - t) * omega).sin() / so);
  auto wb = torch::where(small, torch::full_like(so, t), (t * omega).sin() / so);
  auto dir = wa * ua + wb * ub;
  return detail::l2_normalize(dir) * ((1 - t) * na + t * nb);
}

/// `k >= 2` evenly spaced points from `a` to `b` (`[C]` each), endpoints included: `[k, C]`.
inline torch::Tensor interpolate(const torch::Tensor& a, const torch::Tensor& b, int64_t k) {
  if (k < 2) detail::fail("interpolate: k: expected at least 2 points, got ", k);
  std::vector<torch::Tensor> points;
  points.reserve(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) points.push_back(slerp(a, b, static_cast<double>(i) / static_cast<double>(k - 1)));
  return torch::stack(points);
}

}  // namespace tr0n
