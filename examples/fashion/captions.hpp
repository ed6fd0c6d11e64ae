#pragma once
// Captions for Fashion-MNIST images, from their label and two attributes
// computed from their pixels:
//   brightness: light / dark, the lower / upper within-class tercile of the
//               mean intensity, as the images are shown (ink on white, like
//               every grid tr0n writes): little ink looks light;
//   shape:      narrow / wide, the lower / upper within-class tercile of the
//               ink's width-to-height spread (intensity-weighted standard
//               deviations of the column and row coordinates: smoother than a
//               thresholded bounding box on blurry generated images).
// The middle tercile has no word. The same functions score generated images,
// with the thresholds of the real training images.
#include "idx.hpp"

#include <tr0n/text/word_tokenizer.hpp>

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace fashion_text {

inline constexpr int64_t classes = 10;
/// The caption words of the ten classes.
inline constexpr std::array<const char*, classes> class_words{"t-shirt", "trouser", "pullover", "dress", "coat",
                                                              "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

/// Attribute values: 0 is the middle tercile (no word), 1 the lower, 2 the upper.
enum class attribute : int64_t { brightness = 0, shape = 1 };
inline constexpr std::array<std::array<const char*, 3>, 2> attribute_words{{{"", "light", "dark"},
                                                                            {"", "narrow", "wide"}}};

/// Per-image attribute measures [N, 2]: mean intensity, and the ink's spread ratio.
inline torch::Tensor attribute_measures(const torch::Tensor& images) {
  auto x = images.detach().to(torch::kFloat32).reshape({-1, 28, 28}).clamp(0, 1);
  auto mass = x.sum({1, 2}).clamp_min(1e-6);
  auto coord = torch::arange(28, x.options());
  auto col = x.sum(1), row = x.sum(2);  // [N, 28] ink per column / per row
  auto spread = [&](const torch::Tensor& ink) {
    auto mean = (ink * coord).sum(1) / mass;
    return (((coord.unsqueeze(0) - mean.unsqueeze(1)).pow(2) * ink).sum(1) / mass).clamp_min(1e-6).sqrt();
  };
  return torch::stack({x.mean({1, 2}), spread(col) / spread(row)}, 1);
}

/// Within-class tercile thresholds of the measures: [classes, 2 measures, 2 cuts].
/// A class without images gets NaN cuts: its images are all in the middle.
inline torch::Tensor tercile_thresholds(const torch::Tensor& measures, const torch::Tensor& labels) {
  auto out = torch::full({classes, 2, 2}, std::numeric_limits<double>::quiet_NaN());
  const auto q = torch::tensor({1.0 / 3.0, 2.0 / 3.0});
  for (int64_t k = 0; k < classes; ++k) {
    auto m = measures.index({labels == k});
    if (m.size(0) == 0) continue;
    for (int64_t a = 0; a < 2; ++a) out[k][a] = torch::quantile(m.select(1, a), q);
  }
  return out;
}

/// Attribute values [N, 2] (0 middle, 1 lower, 2 upper) of images whose classes are `labels`.
inline torch::Tensor attribute_values(const torch::Tensor& measures, const torch::Tensor& labels,
                                      const torch::Tensor& thresholds) {
  auto cuts = thresholds.index_select(0, labels.to(torch::kLong).cpu());  // [N, 2, 2]
  auto m = measures.cpu();
  auto lower = m < cuts.select(2, 0), upper = m > cuts.select(2, 1);
  return lower.to(torch::kLong) + 2 * upper.to(torch::kLong);
}

/// The vocabulary: padding first, then every word any caption or prompt uses.
inline std::vector<std::string> vocabulary() {
  std::vector<std::string> v{"<pad>", "a", "an", "photo", "picture", "of"};
  for (const auto& words : attribute_words)
    for (int i = 1; i < 3; ++i) v.emplace_back(words[static_cast<size_t>(i)]);
  for (const char* c : class_words)
    for (auto& w : tr0n::word_tokenizer::words(c)) v.push_back(w);
  return v;
}
/// "a photo of a dark wide ankle boot" is the longest caption.
inline constexpr int64_t context_length = 8;

inline tr0n::word_tokenizer tokenizer() { return tr0n::word_tokenizer(vocabulary(), context_length); }

/// One caption: template `t` (of `templates`), class `k`, brightness word `b`
/// and shape word `s` (0: not mentioned).
inline constexpr int64_t templates = 4;
inline std::string caption(int64_t t, int64_t k, int64_t b, int64_t s) {
  std::string words;
  auto add = [&](const char* w) {
    if (!*w) return;
    if (!words.empty()) words += ' ';
    words += w;
  };
  add(attribute_words[0][static_cast<size_t>(b)]);
  add(attribute_words[1][static_cast<size_t>(s)]);
  add(class_words[static_cast<size_t>(k)]);
  const char* article = words[0] == 'a' || words[0] == 'e' || words[0] == 'i' || words[0] == 'o' ? "an " : "a ";
  switch (t) {
    case 0: return "a photo of " + std::string(article) + words;
    case 1: return "a picture of " + std::string(article) + words;
    case 2: return article + words;
    default: return words;
  }
}

/// Every caption, tokenised: row `((t * 3 + b) * 3 + s) * classes + k`.
struct caption_table {
  torch::Tensor tokens;  ///< [templates * 3 * 3 * classes, context_length]
  static torch::Tensor rows(const torch::Tensor& t, const torch::Tensor& k, const torch::Tensor& b,
                            const torch::Tensor& s) {
    return ((t * 3 + b) * 3 + s) * classes + k;
  }
  static caption_table make(const tr0n::word_tokenizer& tok) {
    std::vector<std::string> all;
    for (int64_t t = 0; t < templates; ++t)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t s = 0; s < 3; ++s)
          for (int64_t k = 0; k < classes; ++k) all.push_back(caption(t, k, b, s));
    return {tok.encode(all)};
  }
};

}  // namespace fashion_text
