#pragma once
// Images in and out of the tool: `--condition-image` decoded (PNG and JPEG,
// through stb, checked first: tests/fuzz runs it on hostile bytes), and G's
// output seen as images (`--image-shape`).
#include <tr0n/errors.hpp>
#include <tr0n/io/tensor_file.hpp>

#include <stb_image.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tr0n_cli {

/// The largest image a condition may come from (16.7 megapixels; it is
/// resized to the generator's output anyway). A header that declares more is
/// refused before any pixel is decoded: stb sizes its first buffer from the
/// header (fuzzing made it ask for 1.5 GB).
inline constexpr int64_t max_image_pixels = int64_t{1} << 24;

/// stb's failure reason, printable and on one line (it can quote a chunk's raw bytes).
inline std::string stb_reason(const char* fallback) {
  const char* reason = stbi_failure_reason();
  return tr0n::printable(reason && *reason ? reason : fallback);
}

/// Decodes a PNG/JPEG's bytes into [1, C, H, W] in [0, 1], resized (bilinear)
/// to `like`'s shape; `name` names it in errors.
inline torch::Tensor decode_image(const std::vector<char>& bytes, const std::string& name, const torch::Tensor& like) {
  // PNG and JPEG only (stb reads more formats; fewer decoders, less to go wrong).
  auto starts_with = [&](std::string_view magic) {
    return bytes.size() >= magic.size() && std::string_view(bytes.data(), magic.size()) == magic;
  };
  const bool png = starts_with("\x89PNG\r\n\x1a\n"), jpeg = starts_with("\xff\xd8\xff");
  if (!bytes.empty() && !png && !jpeg)
    tr0n::fail("--condition-image: ", name, ": cannot be read as an image (not a PNG or JPEG file)");
  if (png) {
    // Every chunk inside the file: stb grows its buffer to a chunk's declared
    // length before reading it (fuzzing made it ask for 1.5 GB on a 4 x 4 image).
    // Up to IEND, every chunk (length, type, data, CRC) whole; what follows IEND is ignored, as stb does.
    for (size_t at = 8; at < bytes.size();) {
      const auto b = [&](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])); };
      const uint64_t length = bytes.size() - at >= 12 ? (b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3)) : 0;
      if (bytes.size() - at < 12 || length > bytes.size() - at - 12)
        tr0n::fail("--condition-image: ", name, ": cannot be read as an image (a PNG chunk runs past the "
                           "end of the file: truncated?)");
      if (std::string_view(bytes.data() + at + 4, 4) == "IEND") break;
      at += 12 + length;
    }
  }
  const auto* buffer = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, n = 0;
  if (bytes.empty() || !stbi_info_from_memory(buffer, size, &w, &h, &n))
    tr0n::fail("--condition-image: ", name, ": cannot be read as an image (",
                       bytes.empty() ? std::string("empty file") : stb_reason("unknown format"), ")");
  if (int64_t{w} * h > max_image_pixels)
    tr0n::fail("--condition-image: ", name, ": ", w, " x ", h, " pixels, more than the ", max_image_pixels,
                       " this tool reads");
  const int channels = static_cast<int>(like.size(1));
  unsigned char* data = stbi_load_from_memory(buffer, size, &w, &h, &n, channels);
  if (!data)
    tr0n::fail("--condition-image: ", name, ": cannot be read as an image (",
                       stb_reason("corrupt or truncated data"), ")");
  auto img = torch::from_blob(data, {h, w, channels}, torch::kUInt8).clone();
  stbi_image_free(data);
  auto x = img.permute({2, 0, 1}).unsqueeze(0).to(like.options()).div_(255.0);
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{like.size(2), like.size(3)})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

/// Reads a PNG/JPEG file (see `decode_image`).
inline torch::Tensor read_image(const std::string& path, const torch::Tensor& like) {
  if (!std::filesystem::exists(path)) tr0n::fail("--condition-image: ", path, ": file not found");
  return decode_image(tr0n::read_bytes(path), path, like);
}

/// `--image-shape`'s check: three positive sizes, C = 1 or 3.
inline void check_image_shape(const std::vector<int64_t>& shape) {
  if (shape.empty()) return;
  if (shape.size() != 3 || shape[1] < 1 || shape[2] < 1 || (shape[0] != 1 && shape[0] != 3))
    tr0n::fail("--image-shape: expected C,H,W with C = 1 or 3 and positive H and W");
}

/// G's output `x` [B, ...] as images [B, C, H, W]: reshaped by `--image-shape`
/// when given, else as it is when it already is one (C = 1 or 3). Anything
/// else fails with one line naming the shapes and the flag.
inline torch::Tensor as_images(const torch::Tensor& x, const std::vector<int64_t>& shape) {
  check_image_shape(shape);
  const auto batch = x.size(0), per_sample = x.numel() / std::max<int64_t>(1, x.size(0));
  if (!shape.empty()) {
    if (shape[0] * shape[1] * shape[2] != per_sample)
      tr0n::fail("--image-shape ", shape[0], ",", shape[1], ",", shape[2], ": ", shape[0] * shape[1] * shape[2],
                         " values an image, but the generator's output ", tr0n::shape_string(x), " has ",
                         per_sample, " a sample");
    return x.reshape({batch, shape[0], shape[1], shape[2]});
  }
  if (x.dim() != 4 || (x.size(1) != 1 && x.size(1) != 3))
    tr0n::fail("the generator's output ", tr0n::shape_string(x),
                       " is not an image [B, C, H, W] with C = 1 or 3: give --image-shape C,H,W (C*H*W = ",
                       per_sample, ")");
  return x;
}

}  // namespace tr0n_cli
