#pragma once
/// \file
/// How tr0n reports a bad argument, for programs built on it (the `tr0n` tool
/// among them) to report theirs the same way.
///
/// Every error the library throws for a bad run-time argument is a
/// `std::invalid_argument` whose message is one line that starts with "tr0n: "
/// and names the argument, what was received and what was expected. Numerical
/// trouble inside a run is never thrown: it is reported per sample.
#include <torch/types.h>

#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tr0n {

/// Throws `std::invalid_argument` with "tr0n: " and the parts, streamed in order:
/// `tr0n::fail("--steps: expected a count >= 0, got ", n)`.
template <class... Parts>
[[noreturn]] inline void fail(const Parts&... parts) {
  std::ostringstream os;
  os << "tr0n: ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

/// The informative line of an exception, for a one-line report: LibTorch's
/// message without its C++ backtrace, and from the TorchScript runtime (which
/// puts a Python-style traceback first) its last "...Error: ..." line, else
/// its first non-blank line.
inline std::string error_line(const std::exception& e) {
  std::string what = e.what();
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) what = c10_error->what_without_backtrace();
  std::string first, error, line;
  std::istringstream lines(what);
  while (std::getline(lines, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (first.empty()) first = line;
    if (line.find("Error: ") != std::string::npos) error = line;
  }
  return error.empty() ? first : error;
}

/// `s` with every byte outside printable ASCII replaced by '?': for names and
/// reasons quoted from untrusted input (one line, no control bytes).
inline std::string printable(std::string s) {
  for (auto& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) ch = '?';
  return s;
}

/// A tensor's shape as errors print it: "[4, 1, 28, 28]".
inline std::string shape_string(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

}  // namespace tr0n
