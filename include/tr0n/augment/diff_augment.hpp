#pragma once
/// \file
/// Differentiable image augmentations (the DiffAugment family), for energies
/// that average an encoder's judgement over randomly augmented copies of each
/// generated image, as the official code's `aug_cosine_latent` does.
///
/// Images are `[B, C, H, W]` in `[0, 1]` (put `rescaled_generator` in front of
/// a generator with another range). Every augmentation draws independent
/// parameters per image through `tr0n::random` (so a seeded run is
/// reproducible), is differentiable in the image and keeps the shape. A
/// strength of 0 is the identity, exactly.
///
/// The defaults are the official code's `DiffAugment(x, 'color,translation,resize,cutout')`
/// on `[-1, 1]` images, mapped to `[0, 1]`: brightness offsets in [-0.5, 0.5],
/// saturation factors in [0, 2], contrast factors in [0.5, 1.5], shifts of up
/// to 1/8 of the size, one resize ratio in [0.8, 1.2] per call, a cutout of
/// half the size, mid-grey (0.5, the official 0) where translation, resize
/// and cutout uncover pixels, and no clamping between operations. Shifts are
/// continuous (bilinear) rather than whole pixels. `augment_options::legacy()`
/// is tr0n 0.1's variant: milder colour, per-image resize ratios, black fill,
/// values clamped to [0, 1] after each operation.
///
/// ```
/// auto aug = tr0n::diff_augment(tr0n::augment_options().translation(0.1).cutout(0.3));
/// auto y = aug(x);  // same shape, independently augmented per image
/// ```
#include <tr0n/detail/check.hpp>
#include <tr0n/random.hpp>

#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/functional/vision.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace tr0n {

struct augment_options {
  /// Offset range: uniform in [-s/2, s/2].
  TORCH_ARG(double, brightness) = 1.0;
  /// Factor range about the channel mean: uniform in [1 - s, 1 + s].
  TORCH_ARG(double, saturation) = 1.0;
  /// Factor range about the image mean: uniform in [1 - s, 1 + s].
  TORCH_ARG(double, contrast) = 0.5;
  /// Largest shift, as a fraction of the size.
  TORCH_ARG(double, translation) = 0.125;
  /// Side of the cut square, as a fraction of the size.
  TORCH_ARG(double, cutout) = 0.5;
  /// Scale range: uniform in [1 - s, 1 + s].
  TORCH_ARG(double, resize) = 0.2;
  /// Value of the pixels that translation, resize and cutout uncover.
  TORCH_ARG(double, fill) = 0.5;
  /// Clamp to [0, 1] after each operation.
  TORCH_ARG(bool, clamp) = false;
  /// One resize ratio per image (true) or one per call (false, official).
  TORCH_ARG(bool, per_image_resize) = false;

 public:
  /// All strengths 0: the identity.
  static augment_options none() {
    return augment_options().brightness(0).saturation(0).contrast(0).translation(0).cutout(0).resize(0);
  }
  /// tr0n 0.1's augmentations.
  static augment_options legacy() {
    return augment_options().brightness(0.5).saturation(0.5).fill(0).clamp(true).per_image_resize(true);
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
    check(fill_, 1, "fill");
  }
};

namespace augment {

namespace detail {
inline torch::Tensor per_image_uniform(const torch::Tensor& x, double lo, double hi) {
  return random::rand({x.size(0), 1, 1, 1}, x.options().requires_grad(false)) * (hi - lo) + lo;
}

inline torch::Tensor maybe_clamp(const torch::Tensor& x, bool clamp) { return clamp ? x.clamp(0, 1) : x; }

/// Resamples each image through its own 2x3 affine map `theta` [B, 2, 3];
/// pixels from outside the image take the value `fill`.
inline torch::Tensor warp(const torch::Tensor& x, const torch::Tensor& theta, double fill) {
  namespace F = torch::nn::functional;
  auto grid = F::affine_grid(theta, x.sizes().vec(), /*align_corners=*/false);
  auto opts = F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false);
  // Sampling is linear: zero padding of (x - fill) is `fill` padding of x.
  return fill == 0 ? F::grid_sample(x, grid, opts) : F::grid_sample(x - fill, grid, opts) + fill;
}

/// Scales `x`'s deviation from `mean` by a per-image factor uniform in [1 - s, 1 + s].
inline torch::Tensor scale_about(const torch::Tensor& x, const torch::Tensor& mean, double s) {
  return (x - mean) * per_image_uniform(x, 1 - s, 1 + s) + mean;
}

inline torch::Tensor identity_theta(const torch::Tensor& x) {
  return torch::eye(3, x.options().requires_grad(false)).narrow(0, 0, 2).unsqueeze(0).repeat({x.size(0), 1, 1});
}

/// One ratio for the whole batch, as the official code: resize by `r`, then
/// pad with `fill` (shrunk) or crop the centre (enlarged) back to the size.
inline torch::Tensor resize_batch(const torch::Tensor& x, double r, double fill) {
  namespace F = torch::nn::functional;
  const auto h = x.size(2), w = x.size(3);
  const auto rh = std::max<int64_t>(1, static_cast<int64_t>(r * static_cast<double>(h)));
  const auto rw = std::max<int64_t>(1, static_cast<int64_t>(r * static_cast<double>(w)));
  auto y = F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{rh, rw})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  auto fit = [&](torch::Tensor t, int64_t dim, int64_t have, int64_t want) {
    if (have < want) {
      const auto before = (want - have) / 2, after = want - have - before;
      std::vector<int64_t> pad(4, 0);
      pad[dim == 3 ? 0 : 2] = before;
      pad[dim == 3 ? 1 : 3] = after;
      return F::pad(t, F::PadFuncOptions(pad).value(fill));
    }
    return t.narrow(dim, (have - want) / 2, want);
  };
  return fit(fit(y, 2, rh, h), 3, rw, w);
}
}  // namespace detail

/// Adds a per-image offset uniform in [-s/2, s/2].
inline torch::Tensor brightness(const torch::Tensor& x, double s, bool clamp = true) {
  if (s == 0) return x;
  return detail::maybe_clamp(x + detail::per_image_uniform(x, -0.5 * s, 0.5 * s), clamp);
}

/// Scales each pixel's deviation from its channel mean by a factor uniform in [1 - s, 1 + s].
inline torch::Tensor saturation(const torch::Tensor& x, double s, bool clamp = true) {
  return s == 0 ? x : detail::maybe_clamp(detail::scale_about(x, x.mean(1, true), s), clamp);
}

/// Scales each image's deviation from its mean by a factor uniform in [1 - s, 1 + s].
inline torch::Tensor contrast(const torch::Tensor& x, double s, bool clamp = true) {
  return s == 0 ? x : detail::maybe_clamp(detail::scale_about(x, x.mean({1, 2, 3}, true), s), clamp);
}

/// Shifts each image by up to a fraction `s` of its size in x and y; uncovered pixels take `fill`.
inline torch::Tensor translation(const torch::Tensor& x, double s, double fill = 0.0) {
  if (s == 0) return x;
  auto theta = detail::identity_theta(x);
  // affine_grid coordinates span [-1, 1]: a shift of s * size is 2 s.
  auto shift = (random::rand({x.size(0), 2}, theta.options()) * 2 - 1) * (2 * s);
  theta.select(2, 2).copy_(shift);
  return detail::warp(x, theta, fill);
}

/// Sets a square of side `s * size` at a random place in each image to `fill`.
inline torch::Tensor cutout(const torch::Tensor& x, double s, double fill = 0.0) {
  if (s == 0) return x;
  const auto h = x.size(2), w = x.size(3);
  const auto ch = std::max<int64_t>(1, static_cast<int64_t>(std::lround(s * static_cast<double>(h))));
  const auto cw = std::max<int64_t>(1, static_cast<int64_t>(std::lround(s * static_cast<double>(w))));
  auto opts = x.options().requires_grad(false);
  auto cy = random::randint(0, h, {x.size(0), 1, 1}, opts.dtype(torch::kLong));
  auto cx = random::randint(0, w, {x.size(0), 1, 1}, opts.dtype(torch::kLong));
  auto ys = torch::arange(h, opts.dtype(torch::kLong)).view({1, h, 1});
  auto xs = torch::arange(w, opts.dtype(torch::kLong)).view({1, 1, w});
  auto inside = (((ys - cy).abs() <= ch / 2) & ((xs - cx).abs() <= cw / 2)).unsqueeze(1).to(x.dtype());
  return fill == 0 ? x * (1 - inside) : x * (1 - inside) + fill * inside;
}

/// Rescales images about their centre by a factor uniform in [1 - s, 1 + s]:
/// shrunk images are padded with `fill`, enlarged ones cropped. One factor
/// per image, or one for the whole call (`per_image = false`, the official way).
inline torch::Tensor resize(const torch::Tensor& x, double s, double fill = 0.0, bool per_image = true,
                            bool clamp = true) {
  if (s == 0) return x;
  if (!per_image) return detail::maybe_clamp(detail::resize_batch(x, random::host_uniform(1 - s, 1 + s), fill), clamp);
  auto theta = detail::identity_theta(x);
  auto scale = random::rand({x.size(0)}, theta.options()) * (2 * s) + (1 - s);
  theta.select(2, 0).select(1, 0).copy_(1.0 / scale);
  theta.select(2, 1).select(1, 1).copy_(1.0 / scale);
  return detail::maybe_clamp(detail::warp(x, theta, fill), clamp);
}

}  // namespace augment

/// The whole family in sequence: color (brightness, saturation, contrast), then
/// geometry (translation, resize), then cutout.
class diff_augment {
 public:
  explicit diff_augment(augment_options options = {}) : options_(options) { options_.validate(); }

  torch::Tensor operator()(const torch::Tensor& x) const {
    if (x.dim() != 4)
      tr0n::detail::fail("diff_augment: images: expected [B, C, H, W], got shape ", tr0n::detail::shape_of(x));
    const auto& o = options_;
    auto y = augment::brightness(x, o.brightness(), o.clamp());
    y = augment::saturation(y, o.saturation(), o.clamp());
    y = augment::contrast(y, o.contrast(), o.clamp());
    y = augment::translation(y, o.translation(), o.fill());
    y = augment::resize(y, o.resize(), o.fill(), o.per_image_resize(), o.clamp());
    return augment::cutout(y, o.cutout(), o.fill());
  }

  const augment_options& options() const noexcept { return options_; }

 private:
  augment_options options_;
};

}  // namespace tr0n
