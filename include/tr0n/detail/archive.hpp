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

#include <algorithm>
#include <array>
#include <exception>
#include <map>
#include <optional>
#include <utility>
#include <vector>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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

/// LibTorch's zip reader over bytes already in memory (no second copy of the file).
class view_reader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit view_reader(std::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* = "") const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - static_cast<size_t>(pos));
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  std::string_view bytes_;
};

/// Whether a record of a LibTorch archive is a pickle (`data.pkl`,
/// `constants.pkl`, and the `.debug_pkl` source maps).
inline bool is_pickle(const std::string& record) {
  auto ends = [&](std::string_view tail) {
    return record.size() >= tail.size() && record.compare(record.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends(".pkl") || ends(".debug_pkl");
}

/// Throws, naming `name` and `record`, unless `data` is a well-formed pickle
/// of the opcodes LibTorch's unpickler reads, every length inside the
/// record, and every memo index below the record's size. (LibTorch's
/// unpickler reserves what a length field or a memo index says before
/// reading: fuzzing made it ask for 4 GB and 31 GB.)
inline void check_pickle(std::string_view data, const std::string& name, const std::string& record) {
  auto bad = [&](const char* what, size_t at) {
    fail(name, ": damaged archive (record ", record, ": ", what, " at byte ", at, ")");
  };
  auto uint = [&](size_t at, int bytes) {
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = v << 8 | static_cast<unsigned char>(data[at + static_cast<size_t>(k)]);
    return v;
  };
  size_t at = 0;
  while (at < data.size()) {
    const auto op = static_cast<unsigned char>(data[at]);
    const size_t start = at++;
    auto need = [&](uint64_t n) {
      if (n > data.size() - at) bad("a length past the end of the pickle", start);
      at += static_cast<size_t>(n);
    };
    auto counted = [&](int width) {  // a length of `width` bytes, then that many bytes
      need(static_cast<uint64_t>(width));
      need(uint(at - static_cast<size_t>(width), width));
    };
    auto line = [&] {  // text up to a newline
      const auto nl = data.find('\n', at);
      if (nl == std::string_view::npos) bad("an unterminated line", start);
      at = nl + 1;
    };
    switch (op) {
      case '.': return;  // STOP
      case '(': case ')': case '}': case ']': case 'N': case 0x88: case 0x89: case 't': case 0x85: case 0x86:
      case 0x87: case 'e': case 'a': case 'u': case 's': case 'R': case 'b': case '0': case '2': case 0x81:
      case 'l': case 'd': case 0x94: case 'Q': case '1':
        break;
      case 'K': case 'q': case 'h': case 0x80: need(1); break;
      case 'M': need(2); break;
      case 'J': need(4); break;
      case 'r': case 'j':  // LONG_BINPUT, LONG_BINGET: LibTorch sizes its memo table by the index
        need(4);
        if (uint(at - 4, 4) > data.size()) bad("a memo index past any the pickle can hold", start);
        break;
      case 'G': need(8); break;
      case 0x95: need(8); break;  // FRAME: a size hint, not a length to read
      case 'C': case 0x8c: case 'U': case 0x8a: counted(1); break;
      case 'X': case 'B': case 'T': case 0x8b: counted(4); break;
      case 0x8d: case 0x8e: counted(8); break;
      case 'c': line(); line(); break;
      case 'P': case 'I': case 'L': case 'F': case 'S': case 'V': line(); break;
      default: bad("an opcode LibTorch does not read", start);
    }
  }
  bad("no STOP", data.size());
}

/// Little-endian integers of an archive's bytes.
struct zip_bytes {
  std::string_view bytes;
  uint32_t u16(size_t at) const {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 8;
  }
  uint32_t u32(size_t at) const { return u16(at) | u16(at + 2) << 16; }
};

/// A record as the zip directory declares it.
struct zip_entry {
  uint32_t crc, size;
  std::string record;  ///< the name in the directory, for messages
};
/// The records by the name LibTorch gives them (without the archive's top
/// folder); none when zip64 markers leave the file to LibTorch.
using zip_directory = std::optional<std::map<std::string, zip_entry>>;

/// Where the end record is: its signature, within the last 64 KiB + 22 bytes (a comment may follow it).
inline size_t zip_end_record(const zip_bytes& z, const std::string& name) {
  const size_t n = z.bytes.size();
  if (n == 0) fail(name, ": empty file");
  if (n < 22) fail(name, ": not a torch.save archive (", n, " bytes, too short to be one)");
  for (size_t at = n - 22;; --at) {
    if (z.u32(at) == 0x06054b50u) return at;
    if (at == 0 || n - at > 22 + 0xFFFF) break;
  }
  fail(name, ": not a whole torch.save archive (no zip end record: truncated, or another kind of file)");
}

/// Reads the directory that the end record at `end` points to; each entry's
/// record must lie inside the file, once. zip64 markers are left to LibTorch
/// in files that need them (4 GiB and over) and are damage in any other.
inline zip_directory read_zip_directory(const zip_bytes& z, size_t end, const std::string& name) {
  const bool large = z.bytes.size() > 0xFFFFFFFFull;
  auto zip64 = [&]() -> zip_directory {
    if (large) return std::nullopt;
    fail(name, ": damaged archive (zip64 markers in a file under 4 GiB)");
  };
  const uint32_t entries = z.u16(end + 10), directory_size = z.u32(end + 12), directory_at = z.u32(end + 16);
  if (entries == 0xFFFF || directory_size == 0xFFFFFFFFu || directory_at == 0xFFFFFFFFu) return zip64();
  if (static_cast<uint64_t>(directory_at) + directory_size > end)
    fail(name, ": damaged archive (its directory lies outside the file: truncated?)");
  std::map<std::string, zip_entry> records;
  size_t at = directory_at;
  for (uint32_t i = 0; i < entries; ++i) {
    if (at + 46 > end || z.u32(at) != 0x02014b50u) fail(name, ": damaged archive (directory entry ", i, " is broken)");
    const uint32_t method = z.u16(at + 10), crc = z.u32(at + 16), packed = z.u32(at + 20), size = z.u32(at + 24);
    const uint32_t name_length = z.u16(at + 28), extra = z.u16(at + 30), comment = z.u16(at + 32);
    const uint32_t local = z.u32(at + 42);
    if (at + 46 + name_length > end) fail(name, ": damaged archive (directory entry ", i, " is broken)");
    const std::string record = printable(std::string(z.bytes.substr(at + 46, name_length)));
    if (packed == 0xFFFFFFFFu || size == 0xFFFFFFFFu || local == 0xFFFFFFFFu) return zip64();
    if (method != 0 && method != 8)
      fail(name, ": record ", record, " uses zip method ", method, "; LibTorch archives are stored or deflated");
    if ((method == 0 && packed != size) || (method == 8 && size > 1032ull * packed + 64))
      fail(name, ": damaged archive (record ", record, " declares ", size, " bytes from ", packed, ")");
    if (static_cast<uint64_t>(local) + 30 > directory_at || z.u32(local) != 0x04034b50u)
      fail(name, ": damaged archive (record ", record, " has no header where the directory says)");
    const uint64_t data = static_cast<uint64_t>(local) + 30 + z.u16(local + 26) + z.u16(local + 28);
    if (data + packed > directory_at)
      fail(name, ": damaged archive (record ", record, " runs past the end of the data: truncated?)");
    const auto slash = record.find('/');
    if (!records.emplace(slash == std::string::npos ? record : record.substr(slash + 1), zip_entry{crc, size, record})
             .second)
      fail(name, ": damaged archive (record ", record, " appears twice)");
    at += 46 + name_length + extra + comment;
  }
  return records;
}

/// The records as LibTorch's reader (miniz) sees them, which is what it will
/// parse: the same set as `records`, each matching its checksum. (The CRC is
/// computed here only, on exactly the bytes LibTorch will use.)
inline void check_zip_records(std::string_view bytes, const std::map<std::string, zip_entry>& records,
                              const std::string& name) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<view_reader>(bytes));
    const auto seen = reader.getAllRecords();
    if (seen.size() != records.size())
      fail(name, ": damaged archive (its records are listed in two different ways)");
    for (const auto& key : seen) {
      const auto it = records.find(key);
      if (it == records.end()) fail(name, ": damaged archive (its records are listed in two different ways)");
      auto [data, size] = reader.getRecord(key);
      const std::string_view content(static_cast<const char*>(data.get()), size);
      if (size != it->second.size || crc32(content) != it->second.crc)
        fail(name, ": damaged archive (record ", it->second.record,
             " fails its checksum: the file was altered or cut)");
      if (is_pickle(key)) check_pickle(content, name, it->second.record);
    }
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    fail(name, ": damaged archive (", brief(e), ")");
  }
}

/// Throws, naming `name`, unless `bytes` is a whole zip archive whose records
/// each lie inside the file and match their CRC-32. Stored records are
/// checked on the bytes; deflated ones (TorchScript code) are bounded by
/// deflate's largest ratio, then inflated by LibTorch's zip reader (miniz,
/// which LibTorch runs without its CRC check) and checked.
/// Archives of 4 GiB and over (zip64) are left to LibTorch; zip64 markers in
/// a smaller file are damage.
inline void check_archive(std::string_view bytes, const std::string& name) {
  const zip_bytes z{bytes};
  const auto records = read_zip_directory(z, zip_end_record(z, name), name);
  if (records) check_zip_records(bytes, *records, name);
}

}  // namespace tr0n::detail
