#pragma once
// Sample-quality metrics: Fréchet distance between feature sets and
// within-class diversity.
#include <torch/linalg.h>
#include <torch/types.h>

namespace fashion {

/// Squared Fréchet distance between Gaussians fitted to two feature sets [N, D], [M, D]:
/// |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in float64.
inline double frechet_distance(const torch::Tensor& a, const torch::Tensor& b) {
  auto fa = a.to(torch::kFloat64), fb = b.to(torch::kFloat64);
  auto mu_a = fa.mean(0), mu_b = fb.mean(0);
  auto cov = [](const torch::Tensor& f, const torch::Tensor& mu) {
    auto c = f - mu;
    return torch::matmul(c.t(), c) / static_cast<double>(f.size(0) - 1);
  };
  auto sa = cov(fa, mu_a), sb = cov(fb, mu_b);
  auto [la, va] = torch::linalg::eigh(sa, "L");
  auto root_a = torch::matmul(va * la.clamp_min(0).sqrt(), va.t());
  auto mid = torch::matmul(torch::matmul(root_a, sb), root_a);
  auto tr_root_mid = torch::linalg::eigvalsh(0.5 * (mid + mid.t()), "L").clamp_min(0).sqrt().sum();
  return ((mu_a - mu_b).pow(2).sum() + sa.trace() + sb.trace() - 2 * tr_root_mid).item<double>();
}

/// Mean pairwise Euclidean distance between images of the same class, averaged over classes.
inline double within_class_diversity(const torch::Tensor& images, const torch::Tensor& labels, int64_t classes) {
  double total = 0;
  int64_t counted = 0;
  for (int64_t k = 0; k < classes; ++k) {
    auto x = images.index({labels == k}).flatten(1).to(torch::kFloat64);
    const auto n = x.size(0);
    if (n < 2) continue;
    total += torch::cdist(x, x).sum().item<double>() / static_cast<double>(n * (n - 1));
    ++counted;
  }
  return counted ? total / static_cast<double>(counted) : 0.0;
}

}  // namespace fashion
