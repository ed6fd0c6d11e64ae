#pragma once
// Private: the one way the library reads a file's or a stream's bytes.
#include <tr0n/detail/check.hpp>

#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <string>
#include <system_error>
#include <string_view>

namespace tr0n::detail {

/// The rest of `in`'s bytes.
inline std::string stream_bytes(std::istream& in) {
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The bytes of the file at `path`; throws "tr0n: [what: ]path: file not found"
/// or "...: cannot be read".
inline std::string file_bytes(const std::string& path, std::string_view what = {}) {
  const std::string where = what.empty() ? path : std::string(what) + ": " + path;
  if (!std::filesystem::exists(path)) fail(where, ": file not found");
  std::ifstream in(path, std::ios::binary);
  std::error_code size_error;
  const auto size = std::filesystem::is_regular_file(path) ? std::filesystem::file_size(path, size_error) : 0;
  if (size > 0 && !size_error) {
    // Read at its size: a string grown as it reads would hold up to twice the file at its peak
    // (700 MB for CLIP ViT-B/32's image tower).
    std::string bytes(static_cast<size_t>(size), '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    if (static_cast<uintmax_t>(in.gcount()) != size) fail(where, ": cannot be read");
    if (in.peek() == std::char_traits<char>::eof()) return bytes;
    bytes += stream_bytes(in);  // the file grew while read
    return bytes;
  }
  auto bytes = stream_bytes(in);
  if (!in.good() && !in.eof()) fail(where, ": cannot be read");
  return bytes;
}

}  // namespace tr0n::detail
