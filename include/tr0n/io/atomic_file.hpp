#pragma once
/// \file
/// `write_file_atomically`: a reader of `path` sees the old file or the whole
/// new one, never a part. The bytes go to a temporary file in the same folder
/// (`.<name>.tmp-XXXXXX`), which is flushed to disk (`fsync`) and renamed over
/// `path`; the folder is then synced so the rename itself survives a crash.
/// A writer killed before the rename leaves `path` as it was (and, at worst,
/// its temporary file); a full disk or any other error removes the temporary
/// file and throws, naming `path` and the reason.
///
/// Every file tr0n and its tools write goes through here: translators, tensor
/// and sample files, vocabularies, and the examples' models, images and metrics.
/// `write_file_streamed` and the `std::ostream` form write the bytes as they
/// are produced, so a large file never sits whole in memory.
#include <tr0n/detail/check.hpp>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define TR0N_POSIX_FILES 1
#endif

namespace tr0n {

namespace detail {
/// Where a streamed file's bytes go.
using byte_sink = std::function<void(const char*, size_t)>;

/// An output stream over a `byte_sink` (no buffering of its own beyond a block).
class sink_streambuf : public std::streambuf {
 public:
  explicit sink_streambuf(const byte_sink& sink) : sink_(sink) { setp(buffer_, buffer_ + sizeof buffer_); }
  ~sink_streambuf() override = default;

 protected:
  int_type overflow(int_type c) override {
    flush_buffer();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(sizeof buffer_)) {  // large writes pass straight through
      flush_buffer();
      sink_(s, static_cast<size_t>(n));
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override {
    flush_buffer();
    return 0;
  }

 private:
  void flush_buffer() {
    if (pptr() > pbase()) sink_(pbase(), static_cast<size_t>(pptr() - pbase()));
    setp(buffer_, buffer_ + sizeof buffer_);
  }
  const byte_sink& sink_;
  char buffer_[1 << 16];
};
}  // namespace detail

/// Writes what `produce(sink)` hands to `sink(bytes, n)`, atomically, as it is
/// produced: the file's contents are never all in memory. The sink does not
/// throw (so it may be called from destructors); a write error is reported,
/// and the temporary file removed, once `produce` returns. An exception from
/// `produce` removes the temporary file and propagates.
template <class Produce>
  requires std::invocable<Produce&, const detail::byte_sink&>
void write_file_streamed(const std::string& path, Produce&& produce) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
#ifdef TR0N_POSIX_FILES
  std::string name = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) detail::fail(path, ": cannot create a temporary file beside it: ", std::strerror(errno));
  ::fchmod(fd, 0644);  // mkstemp makes 0600; other tools and users read these files
  int error = 0;       // the first write error (errno)
  const detail::byte_sink sink = [&](const char* data, size_t size) {
    for (size_t done = 0; error == 0 && done < size;) {
      const auto n = ::write(fd, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) error = n < 0 ? errno : EIO;
      else done += static_cast<size_t>(n);
    }
  };
  auto give_up = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(name.c_str());
    detail::fail(path, ": ", what, ": ", std::strerror(err));
  };
  try {
    produce(sink);
  } catch (...) {
    ::close(fd);
    ::unlink(name.c_str());
    throw;
  }
  if (error != 0) give_up("cannot be written", error);
  if (::fsync(fd) != 0) give_up("cannot be flushed to disk", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(name.c_str());
    detail::fail(path, ": cannot be written: ", std::strerror(err));
  }
  if (::rename(name.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(name.c_str());
    detail::fail(path, ": cannot replace it: ", std::strerror(err));
  }
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
#else
  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const detail::byte_sink sink = [&](const char* data, size_t size) {
      out.write(data, static_cast<std::streamsize>(size));
    };
    try {
      produce(sink);
    } catch (...) {
      out.close();
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw;
    }
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      fs::remove(tmp, ignored);
      detail::fail(path, ": cannot be written");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    detail::fail(path, ": cannot replace it");
  }
#endif
}

inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_streamed(path, [&](const detail::byte_sink& sink) { sink(bytes.data(), bytes.size()); });
}

inline void write_file_atomically(const std::string& path, const std::vector<char>& bytes) {
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
}

/// Writes what `write(std::ostream&)` produces, atomically, as it is produced.
template <class Write>
  requires requires(Write w, std::ostream& os) { w(os); }
void write_file_atomically(const std::string& path, Write&& write) {
  write_file_streamed(path, [&](const detail::byte_sink& sink) {
    detail::sink_streambuf buffer(sink);
    std::ostream out(&buffer);
    write(out);
    out.flush();
    if (!out) detail::fail(path, ": the contents could not be produced");
  });
}

}  // namespace tr0n
