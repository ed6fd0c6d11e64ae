#pragma once
/// \file
/// Differentiable image augmentations (the DiffAugment family), for energies
/// that average an encoder's judgement over randomly augmented copies of each
/// generated image, as the official code's `aug_cosine_latent` does.
///
/// Images are `[B, C, H, W]` in `[0, 1]` (put `rescaled_generator` in front of
/// a generator with another range). Every augmentation draws independent
/// parameters per image from the global LibTorch generator (so
/// `torch::manual_seed` makes it reproducible), is differentiable in the
/// image, keeps the shape, and keeps values in `[0, 1]`. A strength of 0 is
/// the identity, exactly.
///
/// ```
/// auto aug = tr0n::diff_augment(tr0n::augment_options().translation(0.1).cutout(0.3));
/// auto y = aug(x);  // same shape, independently augmented per image
/// ```
#include <tr0n/detail/check.hpp>

#include <torch/nn/functional/vision.h>
#include <torch/types.h>

#include <cmath>

namespace tr0n {
namespace augment {

namespace detail {
inline torch::Tensor per_image_uniform(const torch::Tensor& x, double lo, double hi) {
  return torch::rand({x.size(0), 1, 1, 1}, x.options().requires_grad(false)) * (hi - lo) + lo;
}

/// Resamples each image through its own 2x3 affine map `theta` [B, 2, 3] (zero padding).
inline torch::Tensor warp(const torch::Tensor& x, const torch::Tensor& theta) {
  namespace F = torch::nn::functional;
  auto grid = F::affine_grid(theta, x.sizes().vec(), /*align_corners=*/false);
  return F::grid_sample(x, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

/// Scales `x`'s deviation from `mean` by a per-image factor uniform in [1 - s, 1 + s].
inline torch::Tensor scale_about(const torch::Tensor& x, const torch::Tensor& mean, double s) {
  return ((x - mean) * per_image_uniform(x, 1 - s, 1 + s) + mean).clamp(0, 1);
}

inline torch::Tensor identity_theta(const torch::Tensor& x) {
  return torch::eye(3, x.options().requires_grad(false)).narrow(0, 0, 2).unsqueeze(0).repeat({x.size(0), 1, 1});
}
}  // namespace detail

/// Adds a per-image offset uniform in [-s/2, s/2].
inline torch::Tensor brightness(const torch::Tensor& x, double s) {
  if (s == 0) return x;
  return (x + detail::per_image_uniform(x, -0.5 * s, 0.5 * s)).clamp(0, 1);
}

/// Scales each pixel's deviation from its channel mean by a factor uniform in [1 - s, 1 + s].
inline torch::Tensor saturation(const torch::Tensor& x, double s) {
  return s == 0 ? x : detail::scale_about(x, x.mean(1, true), s);
}

/// Scales each image's deviation from its mean by a factor uniform in [1 - s, 1 + s].
inline torch::Tensor contrast(const torch::Tensor& x, double s) {
  return s == 0 ? x : detail::scale_about(x, x.mean({1, 2, 3}, true), s);
}

/// Shifts each image by up to a fraction `s` of its size in x and y (zero padding).
inline torch::Tensor translation(const torch::Tensor& x, double s) {
  if (s == 0) return x;
  auto theta = detail::identity_theta(x);
  // affine_grid coordinates span [-1, 1]: a shift of s * size is 2 s.
  auto shift = (torch::rand({x.size(0), 2}, theta.options()) * 2 - 1) * (2 * s);
  theta.select(2, 2).copy_(shift);
  return detail::warp(x, theta);
}

/// Zeroes a square of side `s * size` at a random place in each image.
inline torch::Tensor cutout(const torch::Tensor& x, double s) {
  if (s == 0) return x;
  const auto h = x.size(2), w = x.size(3);
  const auto ch = std::max<int64_t>(1, static_cast<int64_t>(std::lround(s * static_cast<double>(h))));
  const auto cw = std::max<int64_t>(1, static_cast<int64_t>(std::lround(s * static_cast<double>(w))));
  auto opts = x.options().requires_grad(false);
  auto cy = torch::randint(0, h, {x.size(0), 1, 1}, opts.dtype(torch::kLong));
  auto cx = torch::randint(0, w, {x.size(0), 1, 1}, opts.dtype(torch::kLong));
  auto ys = torch::arange(h, opts.dtype(torch::kLong)).view({1, h, 1});
  auto xs = torch::arange(w, opts.dtype(torch::kLong)).view({1, 1, w});
  auto inside = ((ys - cy).abs() <= ch / 2) & ((xs - cx).abs() <= cw / 2);
  return x * (~inside).unsqueeze(1).to(x.dtype());
}

/// Rescales each image about its centre by a factor uniform in [1 - s, 1 + s]:
/// shrunk images are zero-padded, enlarged ones cropped.
inline torch::Tensor resize(const torch::Tensor& x, double s) {
  if (s == 0) return x;
  auto theta = detail::identity_theta(x);
  auto scale = torch::rand({x.size(0)}, theta.options()) * (2 * s) + (1 - s);
  theta.select(2, 0).select(1, 0).copy_(1.0 / scale);
  theta.select(2, 1).select(1, 1).copy_(1.0 / scale);
  return detail::warp(x, theta).clamp(0, 1);
}

}  // namespace augment

struct augment_options {
  TORCH_ARG(double, brightness) = 0.5;
  TORCH_ARG(double, saturation) = 0.5;
  TORCH_ARG(double, contrast) = 0.5;
  TORCH_ARG(double, translation) = 0.125;
  TORCH_ARG(double, cutout) = 0.5;
  TORCH_ARG(double, resize) = 0.2;

 public:
  /// All strengths 0: the identity.
  static augment_options none() {
    return augment_options().brightness(0).saturation(0).contrast(0).translation(0).cutout(0).resize(0);
  }
  void validate() const {
    auto check = [](double v, double hi, const char* name) {
      if (!(v >= 0 && v <= hi)) tr0n::detail::fail("augment_options: ", name, ": expected a value in [0, ", hi, "], got ", v);
    };
    check(brightness_, 2, "brightness");
    check(saturation_, 1, "saturation");
    check(contrast_, 1, "contrast");
    check(translation_, 1, "translation");
    check(cutout_, 1, "cutout");
    check(resize_, 0.99, "resize");
  }
};

/// The whole family in sequence: color (brightness, saturation, contrast), then
/// geometry (translation, resize), then cutout.
class diff_augment {
 public:
  explicit diff_augment(augment_options options = {}) : options_(options) { options_.validate(); }

  torch::Tensor operator()(const torch::Tensor& x) const {
    if (x.dim() != 4)
      tr0n::detail::fail("diff_augment: images: expected [B, C, H, W], got shape ", tr0n::detail::shape_of(x));
    auto y = augment::brightness(x, options_.brightness());
    y = augment::saturation(y, options_.saturation());
    y = augment::contrast(y, options_.contrast());
    y = augment::translation(y, options_.translation());
    y = augment::resize(y, options_.resize());
    return augment::cutout(y, options_.cutout());
  }

  const augment_options& options() const noexcept { return options_; }

 private:
  augment_options options_;
};

}  // namespace tr0n
