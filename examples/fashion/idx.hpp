#pragma once
// A reader for the IDX format of (Fashion-)MNIST, gzip-compressed or plain
// (zlib's gzread reads both). Errors name the file and the problem.
#include <torch/types.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace fashion {

struct idx_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Reads an IDX file of unsigned bytes into a uint8 tensor of its declared shape.
inline torch::Tensor read_idx(const std::filesystem::path& path) {
  const auto name = path.string();
  if (!std::filesystem::exists(path))
    throw idx_error("IDX file " + name +
                    " not found: Fashion-MNIST comes with Debian's package dataset-fashion-mnist "
                    "(apt-get install dataset-fashion-mnist), or pass the folder that holds it");
  gzFile file = gzopen(name.c_str(), "rb");
  if (!file) throw idx_error("IDX file " + name + ": cannot be opened");
  struct closer {
    gzFile f;
    ~closer() { gzclose(f); }
  } guard{file};

  auto read_exactly = [&](void* buffer, size_t bytes, const std::string& what) {
    size_t done = 0;
    auto* out = static_cast<unsigned char*>(buffer);
    while (done < bytes) {
      const auto chunk = static_cast<unsigned>(std::min<size_t>(bytes - done, 1u << 30));
      const int got = gzread(file, out + done, chunk);
      if (got < 0) {
        int code = 0;
        throw idx_error("IDX file " + name + ": corrupt compressed data while reading " + what + " (" +
                        gzerror(file, &code) + ")");
      }
      if (got == 0)
        throw idx_error("IDX file " + name + " is truncated: expected " + std::to_string(bytes) + " bytes of " +
                        what + ", got " + std::to_string(done));
      done += static_cast<size_t>(got);
    }
  };

  std::array<unsigned char, 4> magic{};
  read_exactly(magic.data(), magic.size(), "header");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] < 1 || magic[3] > 4)
    throw idx_error("IDX file " + name + ": bad magic number (expected 00 00 08 0n for unsigned bytes of rank " +
                    "1 to 4, got " + std::to_string(magic[0]) + " " + std::to_string(magic[1]) + " " +
                    std::to_string(magic[2]) + " " + std::to_string(magic[3]) + ")");
  // The data can be no larger than the file allows: its own size when plain,
  // deflate's largest ratio (1032:1) times it when compressed. A header that
  // declares more is refused before anything is allocated.
  const auto file_size = static_cast<int64_t>(std::filesystem::file_size(path));
  const int64_t most = 1032 * file_size + 1024;
  std::vector<int64_t> dims(magic[3]);
  int64_t extent = 1;  // the product of the non-zero dimensions, saturated past `most`
  bool empty = false;
  for (auto& d : dims) {
    std::array<unsigned char, 4> b{};
    read_exactly(b.data(), b.size(), "dimensions");
    d = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    if (d > 0) extent = extent > most / d ? most + 1 : extent * d;
    empty = empty || d == 0;
  }
  const int64_t count = empty ? 0 : extent;
  if (extent > most)
    throw idx_error("IDX file " + name + ": its header declares more data than a file of " +
                    std::to_string(file_size) + " bytes can hold (corrupt header)");
  auto data = torch::empty(dims, torch::kUInt8);
  read_exactly(data.data_ptr<uint8_t>(), static_cast<size_t>(count), "data");
  return data;
}

struct split {
  torch::Tensor images;  ///< [N, 1, 28, 28] float in [0, 1]
  torch::Tensor labels;  ///< [N] int64
};

inline split load_split(const std::filesystem::path& dir, const std::string& prefix) {
  auto images = read_idx(dir / (prefix + "-images-idx3-ubyte.gz"));
  auto labels = read_idx(dir / (prefix + "-labels-idx1-ubyte.gz"));
  if (images.dim() != 3 || labels.dim() != 1 || images.size(0) != labels.size(0))
    throw idx_error("Fashion-MNIST " + prefix + " split in " + dir.string() + ": images " +
                    std::to_string(images.dim() == 3 ? images.size(0) : -1) + " and labels " +
                    std::to_string(labels.dim() == 1 ? labels.size(0) : -1) + " do not match");
  return {images.unsqueeze(1).to(torch::kFloat32).div_(255.0), labels.to(torch::kLong)};
}

inline constexpr std::array<const char*, 10> class_names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                         "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

}  // namespace fashion
