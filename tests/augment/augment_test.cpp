// Differentiable augmentations: shapes, seeds, the official DiffAugment's
// defaults, and gradients.
// Differentiable augmentations, the augmented cosine energy's parts, the
// preprocessing stage and semantic interpolation.
#include <tr0n.hpp>

#include <catch2/catch.hpp>

#include <functional>

#include <string>

#include <vector>

using namespace tr0n;

namespace {
using augmentation = std::function<torch::Tensor(const torch::Tensor&, double)>;

std::vector<std::pair<std::string, augmentation>> all_augmentations() {
  return {{"brightness", [](const torch::Tensor& x, double s) { return augment::brightness(x, s); }},
          {"saturation", [](const torch::Tensor& x, double s) { return augment::saturation(x, s); }},
          {"contrast", [](const torch::Tensor& x, double s) { return augment::contrast(x, s); }},
          {"translation", [](const torch::Tensor& x, double s) { return augment::translation(x, s); }},
          {"cutout", [](const torch::Tensor& x, double s) { return augment::cutout(x, s); }},
          {"resize", [](const torch::Tensor& x, double s) { return augment::resize(x, s); }}};
}

torch::Tensor images(int64_t b = 4) {
  torch::manual_seed(123);
  // Away from 0 and 1, so no clamp is active for the gradient check.
  return torch::rand({b, 3, 12, 12}, torch::kFloat64) * 0.4 + 0.3;
}

}  // namespace

TEST_CASE("each augmentation keeps shape and range, is seeded, and is the identity at strength 0", "[augment]") {
  auto x = images();
  for (const auto& [name, aug] : all_augmentations()) {
    INFO(name);
    torch::manual_seed(5);
    auto y = aug(x, 0.5);
    CHECK(y.sizes() == x.sizes());
    CHECK(y.min().item<double>() >= 0.0);
    CHECK(y.max().item<double>() <= 1.0);
    CHECK_FALSE(torch::equal(y, x));
    torch::manual_seed(5);
    CHECK(torch::equal(aug(x, 0.5), y));
    CHECK(torch::equal(aug(x, 0.0), x));
    // Images of a batch get independent parameters.
    auto same = x[0].unsqueeze(0).expand({4, 3, 12, 12}).contiguous();
    auto ys = aug(same, 0.5);
    CHECK_FALSE(torch::equal(ys[0], ys[1]));
  }
  torch::manual_seed(5);
  CHECK(torch::equal(diff_augment(augment_options::none())(x), x));
  CHECK_THROWS_WITH(diff_augment(augment_options().cutout(2.0)), Catch::Contains("cutout"));
}

TEST_CASE("the default augmentations are the official DiffAugment's", "[augment][parity]") {
  const augment_options o;
  CHECK(o.brightness() == 1.0);   // offsets in [-0.5, 0.5]
  CHECK(o.saturation() == 1.0);   // factors in [0, 2]
  CHECK(o.contrast() == 0.5);     // factors in [0.5, 1.5]
  CHECK(o.translation() == 0.125);
  CHECK(o.resize() == 0.2);       // ratios in [0.8, 1.2]
  CHECK(o.cutout() == 0.5);
  CHECK(o.fill() == 0.5);         // the official 0 on [-1, 1] images: mid-grey
  CHECK_FALSE(o.clamp());
  CHECK_FALSE(o.per_image_resize());

  torch::manual_seed(8);
  auto black = torch::zeros({8, 1, 16, 16}, torch::kFloat64);
  // Uncovered and cut pixels are mid-grey, and nothing else changes a black image.
  for (auto y : {augment::cutout(black, 0.5, 0.5), augment::resize(black, 0.2, 0.5, /*per_image=*/false, false)}) {
    CHECK(((y - 0.5).abs() < 1e-9 | (y.abs() < 1e-9)).all().item<bool>());
  }
  CHECK(augment::cutout(black, 0.5, 0.5).max().item<double>() == Approx(0.5));
  // Shifts are bilinear: edge pixels blend black with the mid-grey fill.
  auto shifted = augment::translation(black, 0.25, 0.5);
  CHECK(shifted.max().item<double>() == Approx(0.5));
  CHECK(shifted.min().item<double>() >= 0.0);
  // One resize ratio per call: identical images stay identical.
  auto same = torch::rand({1, 3, 16, 16}, torch::kFloat64).expand({6, 3, 16, 16}).contiguous();
  auto resized = augment::resize(same, 0.2, 0.5, /*per_image=*/false, /*clamp=*/false);
  CHECK(torch::equal(resized, resized[0].unsqueeze(0).expand_as(resized)));
  CHECK_FALSE(torch::equal(resized, same));
  // No clamping between operations: values leave [0, 1].
  auto bright = torch::full({16, 3, 8, 8}, 0.9, torch::kFloat64);
  CHECK(augment::brightness(bright, 1.0, /*clamp=*/false).max().item<double>() > 1.0);
  CHECK(diff_augment()(bright).max().item<double>() > 1.0);
  CHECK(diff_augment(augment_options::legacy())(bright).max().item<double>() <= 1.0);
}

TEST_CASE("each augmentation is differentiable: autograd matches finite differences", "[augment]") {
  auto x = images(2);
  auto v = torch::randn_like(x);
  auto w = torch::randn_like(x);
  const double eps = 1e-6;
  for (const auto& [name, aug] : all_augmentations()) {
    INFO(name);
    // Same random parameters for every evaluation: reseed before each.
    auto f = [&](const torch::Tensor& in) {
      torch::manual_seed(77);
      return (aug(in, 0.3) * w).sum();
    };
    auto xr = x.clone().requires_grad_(true);
    auto g = torch::autograd::grad({f(xr)}, {xr})[0];
    const double analytic = (g * v).sum().item<double>();
    const double numeric = ((f(x + eps * v) - f(x - eps * v)) / (2 * eps)).item<double>();
    CHECK(analytic == Approx(numeric).epsilon(1e-5).margin(1e-7));
    CHECK(g.abs().sum().item<double>() > 0);
  }
}
