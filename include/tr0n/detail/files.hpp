#pragma once
// Private: the one way the library reads a file's or a stream's bytes.
#include <tr0n/detail/check.hpp>

#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <string>
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
  auto bytes = stream_bytes(in);
  if (!in.good() && !in.eof()) fail(where, ": cannot be read");
  return bytes;
}

}  // namespace tr0n::detail
