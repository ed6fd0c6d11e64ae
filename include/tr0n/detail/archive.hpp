#pragma once
// Private: a structural check of the zip archives LibTorch writes (torch.save,
// torch::save, TorchScript modules), run on the bytes before LibTorch parses
// them.
//
// Why: LibTorch 1.13 reads these archives with CRC checks turned off
// (MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS), so a damaged file reaches its
// unpickler and TorchScript importer. Fuzzing found both crashing (a SEGV in
// ScriptTypeParser) or reserving 4 GiB on a few flipped bytes. Here every
// record is bounds-checked against the file and its CRC-32 compared with the
// central directory's, so a truncated, cut, random or bit-flipped file is
// refused, by name, before LibTorch sees it.
//
// What it does not do: a file forged with valid checksums is still parsed by
// LibTorch. Like any pickle, a .pt file is code and data together: load only
// files you trust.
#include <tr0n/detail/check.hpp>

#include <caffe2/serialize/inline_container.h>

#include <array>
#include <exception>
#include <sstream>
#include <utility>
#include <vector>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tr0n::detail {

/// CRC-32 (IEEE 802.3, the zip format's), table-driven. Written here because
/// a header-only library cannot add zlib to its users' link line, and
/// LibTorch's own crc_alt.h defines non-inline functions in a header.
inline uint32_t crc32(std::string_view data) {
  static constexpr auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) c = table[(c ^ byte) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/// Throws, naming `name`, unless `bytes` is a whole zip archive whose records
/// each lie inside the file and match their CRC-32. Stored records are
/// checked on the bytes; deflated ones (TorchScript code) are bounded by
/// deflate's largest ratio, then inflated by LibTorch's zip reader (miniz,
/// which LibTorch runs without its CRC check) and checked.
/// Archives in the zip64 format (over 4 GiB) are left to LibTorch.
inline void check_archive(std::string_view bytes, const std::string& name) {
  auto u16 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8;
  };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  const size_t n = bytes.size();
  if (n == 0) fail(name, ": empty file");
  if (n < 22) fail(name, ": not a torch.save archive (", n, " bytes, too short to be one)");
  // The end record: its signature, within the last 64 KiB + 22 bytes (a comment may follow it).
  size_t end = std::string_view::npos;
  for (size_t at = n - 22;; --at) {
    if (u32(at) == 0x06054b50u) {
      end = at;
      break;
    }
    if (at == 0 || n - at > 22 + 0xFFFF) break;
  }
  if (end == std::string_view::npos)
    fail(name, ": not a whole torch.save archive (no zip end record: truncated, or another kind of file)");
  const uint32_t entries = u16(end + 10), directory_size = u32(end + 12), directory_at = u32(end + 16);
  if (entries == 0xFFFF || directory_size == 0xFFFFFFFFu || directory_at == 0xFFFFFFFFu) return;  // zip64
  if (static_cast<uint64_t>(directory_at) + directory_size > end)
    fail(name, ": damaged archive (its directory lies outside the file: truncated?)");
  size_t at = directory_at;
  std::vector<std::pair<std::string, uint32_t>> deflated;  // records to inflate, and their CRC
  for (uint32_t i = 0; i < entries; ++i) {
    if (at + 46 > end || u32(at) != 0x02014b50u) fail(name, ": damaged archive (directory entry ", i, " is broken)");
    const uint32_t method = u16(at + 10), crc = u32(at + 16), packed = u32(at + 20), size = u32(at + 24);
    const uint32_t name_length = u16(at + 28), extra = u16(at + 30), comment = u16(at + 32);
    const uint32_t local = u32(at + 42);
    if (at + 46 + name_length > end) fail(name, ": damaged archive (directory entry ", i, " is broken)");
    std::string record(bytes.substr(at + 46, name_length));
    for (auto& ch : record)
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) ch = '?';
    if (packed == 0xFFFFFFFFu || size == 0xFFFFFFFFu || local == 0xFFFFFFFFu) return;  // zip64
    if (method != 0 && method != 8)
      fail(name, ": record ", record, " uses zip method ", method, "; LibTorch archives are stored or deflated");
    if ((method == 0 && packed != size) || (method == 8 && size > 1032ull * packed + 64))
      fail(name, ": damaged archive (record ", record, " declares ", size, " bytes from ", packed, ")");
    if (static_cast<uint64_t>(local) + 30 > directory_at || u32(local) != 0x04034b50u)
      fail(name, ": damaged archive (record ", record, " has no header where the directory says)");
    const uint64_t data = static_cast<uint64_t>(local) + 30 + u16(local + 26) + u16(local + 28);
    if (data + packed > directory_at)
      fail(name, ": damaged archive (record ", record, " runs past the end of the data: truncated?)");
    if (method == 0 && crc32(bytes.substr(static_cast<size_t>(data), size)) != crc)
      fail(name, ": damaged archive (record ", record, " fails its checksum: the file was altered or cut)");
    if (method == 8) deflated.emplace_back(record, crc);
    at += 46 + name_length + extra + comment;
  }
  if (deflated.empty()) return;
  // LibTorch's reader names records without the archive's top folder.
  try {
    std::istringstream in{std::string(bytes)};
    caffe2::serialize::PyTorchStreamReader reader(&in);
    for (const auto& [record, crc] : deflated) {
      const auto slash = record.find('/');
      const auto key = slash == std::string::npos ? record : record.substr(slash + 1);
      auto [data, size] = reader.getRecord(key);
      if (crc32(std::string_view(static_cast<const char*>(data.get()), size)) != crc)
        fail(name, ": damaged archive (record ", record, " fails its checksum: the file was altered or cut)");
    }
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    fail(name, ": damaged archive (", brief(e), ")");
  }
}

}  // namespace tr0n::detail
