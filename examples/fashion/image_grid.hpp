#pragma once
// A PNG grid of samples, one row per class, each row labelled with its class
// name (text drawn with stb_easy_font, written with stb_image_write).
#include <tr0n/io/atomic_file.hpp>

#include <stb_easy_font.h>
#include <stb_image_write.h>
#include <torch/types.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace fashion {

/// `images` [classes * per_class, 1, 28, 28] in [0, 1], condition-major; shows
/// the first `columns` samples of each class, each row after its label (in a
/// margin `label_width` pixels wide). Returns false if writing failed.
inline bool write_grid(const std::string& path, const torch::Tensor& images, int64_t classes, int64_t per_class,
                       int64_t columns, const std::vector<std::string>& labels, int label_width = 84) {
  constexpr int cell = 28, pad = 2;
  columns = std::min(columns, per_class);
  const int width = label_width + static_cast<int>(columns) * (cell + pad) + pad;
  const int height = static_cast<int>(classes) * (cell + pad) + pad;
  std::vector<unsigned char> canvas(static_cast<size_t>(width * height), 255);
  auto pixels = (images.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1) * 255).to(torch::kUInt8).contiguous();
  auto px = pixels.accessor<uint8_t, 4>();
  for (int64_t k = 0; k < classes; ++k) {
    const int top = pad + static_cast<int>(k) * (cell + pad);
    for (int64_t j = 0; j < columns; ++j) {
      const int left = label_width + pad + static_cast<int>(j) * (cell + pad);
      for (int y = 0; y < cell; ++y)
        for (int x = 0; x < cell; ++x)
          canvas[static_cast<size_t>((top + y) * width + left + x)] = 255 - px[k * per_class + j][0][y][x];
    }
    // stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes each): fill them.
    std::array<char, 16 * 4 * 200> buffer{};
    std::string text = k < static_cast<int64_t>(labels.size()) ? labels[static_cast<size_t>(k)] : std::to_string(k);
    const int quads = stb_easy_font_print(2, static_cast<float>(top + 10), text.data(), nullptr, buffer.data(),
                                          static_cast<int>(buffer.size()));
    const auto* v = reinterpret_cast<const float*>(buffer.data());
    for (int q = 0; q < quads; ++q) {
      const float* quad = v + q * 16;
      const int x0 = static_cast<int>(quad[0]), y0 = static_cast<int>(quad[1]);
      const int x1 = static_cast<int>(quad[8]), y1 = static_cast<int>(quad[9]);
      for (int y = std::max(0, y0); y < std::min(height, y1); ++y)
        for (int x = std::max(0, x0); x < std::min(label_width, x1); ++x) canvas[static_cast<size_t>(y * width + x)] = 0;
    }
  }
  std::string png;
  const auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (stbi_write_png_to_func(append, &png, width, height, 1, canvas.data(), width) == 0) return false;
  try {
    tr0n::write_file_atomically(path, std::string_view(png));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace fashion
