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
#include <tr0n/detail/check.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
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

inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
#ifdef TR0N_POSIX_FILES
  std::string name = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) detail::fail(path, ": cannot create a temporary file beside it: ", std::strerror(errno));
  auto give_up = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(name.c_str());
    detail::fail(path, ": ", what, ": ", std::strerror(err));
  };
  ::fchmod(fd, 0644);  // mkstemp makes 0600; other tools and users read these files
  for (size_t done = 0; done < bytes.size();) {
    const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) give_up("cannot be written");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) give_up("cannot be flushed to disk");
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
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
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

inline void write_file_atomically(const std::string& path, const std::vector<char>& bytes) {
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
}

/// Writes what `write(std::ostream&)` produces, atomically.
template <class Write>
  requires requires(Write w, std::ostream& os) { w(os); }
void write_file_atomically(const std::string& path, Write&& write) {
  std::ostringstream out(std::ios::binary);
  write(out);
  if (!out) detail::fail(path, ": the contents could not be produced");
  write_file_atomically(path, std::string_view(out.view()));
}

}  // namespace tr0n
