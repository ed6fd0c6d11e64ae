#pragma once
/// \file
/// Composable stages between a generator and an encoder such as CLIP:
///  - `rescaled_generator(g, lo, hi)`: maps a generator's output from
///    `[lo, hi]` to `[0, 1]` (what the augmentations and CLIP expect);
///  - `preprocessed_encoder(f, preprocess_options)`: resizes images to the
///    encoder's input size and normalises each channel by a mean and std
///    before calling `f` (CLIP's own preprocessing, made differentiable).
///
/// ```
/// auto g01 = tr0n::rescaled_generator(biggan, -1.0, 1.0);
/// auto clip = tr0n::preprocessed_encoder(clip_image_encoder, tr0n::preprocess_options::clip());
/// ```
#include <tr0n/concepts/encoder.hpp>
#include <tr0n/concepts/generator.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/runtime/precision.hpp>

#include <torch/nn/functional/upsampling.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace tr0n {

template <Generator G>
class rescaled_generator {
 public:
  using tr0n_tag = generator_tag;

  rescaled_generator(G generator, double lo, double hi) : generator_(std::move(generator)), lo_(lo), hi_(hi) {
    if (!(lo < hi)) detail::fail("rescaled_generator: expected lo < hi, got lo = ", lo, ", hi = ", hi);
  }

  torch::Tensor forward(const torch::Tensor& z) { return forward(z, precision::fp32); }
  /// Passes the precision on to a generator that takes it.
  torch::Tensor forward(const torch::Tensor& z, precision p) {
    return (detail::forward_with(detail::unwrap(generator_), z, p) - lo_) / (hi_ - lo_);
  }
  const auto& prior() const { return detail::unwrap(generator_).prior(); }
  G& base() noexcept { return generator_; }

 private:
  G generator_;
  double lo_, hi_;
};

struct preprocess_options {
  /// Output height and width; 0 keeps the input size.
  TORCH_ARG(int64_t, size) = 0;
  /// Per-channel mean and std; empty means no normalisation.
  TORCH_ARG(std::vector<double>, mean) = {};
  TORCH_ARG(std::vector<double>, std) = {};

 public:
  /// CLIP's: 224 x 224, its ImageNet-style channel statistics.
  static preprocess_options clip() {
    return preprocess_options()
        .size(224)
        .mean({0.48145466, 0.4578275, 0.40821073})
        .std({0.26862954, 0.26130258, 0.27577711});
  }
  /// torchvision's ImageNet statistics (size unchanged: set it for the model).
  static preprocess_options imagenet() {
    return preprocess_options().mean({0.485, 0.456, 0.406}).std({0.229, 0.224, 0.225});
  }
};

namespace detail {

/// `options`' mean and std as `[1, C, 1, 1]` tensors on `like`'s device and dtype.
inline std::pair<torch::Tensor, torch::Tensor> channel_statistics(const preprocess_options& options,
                                                                  const torch::Tensor& like) {
  const auto c = static_cast<int64_t>(options.mean().size());
  const auto on = like.options().requires_grad(false);
  return {torch::tensor(options.mean(), torch::kFloat64).to(on).view({1, c, 1, 1}),
          torch::tensor(options.std(), torch::kFloat64).to(on).view({1, c, 1, 1})};
}

/// The preprocessing stage, with the channel statistics from `stats(like)`.
template <class Stats>
torch::Tensor preprocess_with(const preprocess_options& options, const torch::Tensor& x, Stats&& stats) {
  if (options.size() == 0 && options.mean().empty()) return x;  // the identity, for any data
  if (x.dim() != 4) fail("preprocessed_encoder: images: expected [B, C, H, W], got shape ", shape_of(x));
  auto y = x;
  if (options.size() > 0 && (y.size(2) != options.size() || y.size(3) != options.size())) {
    namespace Fn = torch::nn::functional;
    y = Fn::interpolate(y, Fn::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{options.size(), options.size()})
                               .mode(torch::kBicubic)
                               .align_corners(false));
  }
  if (!options.mean().empty()) {
    const auto c = static_cast<int64_t>(options.mean().size());
    if (y.size(1) != c)
      fail("preprocessed_encoder: images have ", y.size(1), " channels, expected ", c, " (the length of mean/std)");
    const auto [mean, std] = stats(y);
    y = (y - mean) / std;
  }
  return y;
}

}  // namespace detail

/// The preprocessing stage on its own (what `preprocessed_encoder` hands its
/// encoder), for a batch seen once: to probe an encoder with what it will see.
inline torch::Tensor preprocess_images(const preprocess_options& options, const torch::Tensor& x) {
  return detail::preprocess_with(options, x, [&](const torch::Tensor& like) {
    return detail::channel_statistics(options, like);
  });
}

template <Encoder F>
class preprocessed_encoder {
 public:
  using tr0n_tag = encoder_tag;

  preprocessed_encoder(F encoder, preprocess_options options) : encoder_(std::move(encoder)), options_(std::move(options)) {
    if (options_.mean().size() != options_.std().size())
      detail::fail("preprocess_options: mean has ", options_.mean().size(), " channels but std has ",
                   options_.std().size(), ": expected the same count");
    for (double s : options_.std())
      if (!(s > 0)) detail::fail("preprocess_options: std: expected values > 0, got ", s);
    if (options_.size() < 0) detail::fail("preprocess_options: size: expected >= 0, got ", options_.size());
  }

  torch::Tensor forward(const torch::Tensor& x) { return forward(x, precision::fp32); }
  /// Passes the precision on to an encoder that takes it.
  torch::Tensor forward(const torch::Tensor& x, precision p) {
    return detail::forward_with(detail::unwrap(encoder_), preprocess(x), p);
  }
  int64_t condition_dim() const { return detail::unwrap(encoder_).condition_dim(); }

  /// The stage alone: `[B, C, H, W]` in [0, 1] to the encoder's input.
  torch::Tensor preprocess(const torch::Tensor& x) const {
    return detail::preprocess_with(options_, x, [this](const torch::Tensor& like) { return statistics(like); });
  }
  const preprocess_options& options() const noexcept { return options_; }
  F& base() noexcept { return encoder_; }

 private:
  /// Mean and std `[1, C, 1, 1]` on `like`'s device and dtype, made once per
  /// device and dtype (`torch::tensor` of host values on every call would be a
  /// pageable host-to-device copy per step on CUDA). Copies share the cache.
  std::pair<torch::Tensor, torch::Tensor> statistics(const torch::Tensor& like) const {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    for (const auto& [mean, std] : cache_->stats)
      if (mean.device() == like.device() && mean.scalar_type() == like.scalar_type()) return {mean, std};
    cache_->stats.push_back(detail::channel_statistics(options_, like));
    return cache_->stats.back();
  }

  struct stats_cache {
    std::mutex mutex;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> stats;
  };

  F encoder_;
  preprocess_options options_;
  std::shared_ptr<stats_cache> cache_ = std::make_shared<stats_cache>();
};

}  // namespace tr0n
