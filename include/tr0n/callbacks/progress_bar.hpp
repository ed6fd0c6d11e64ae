#pragma once
/// \file
/// `progress_bar`: progress on a stream (stderr by default), for both sampling
/// and training. On a terminal it is one bar redrawn in place with carriage
/// returns; on anything else (a log file, a pipe) it writes a plain line at
/// every tenth of the run instead, so logs hold no `\r` and stay short.
/// `terminal(bool)` overrides the detection. It reads the step's value (one
/// host sync per redraw) only every `every` steps; `show_value(false)` avoids
/// even that.
#include <tr0n/concepts/callback.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace tr0n {

class progress_bar {
 public:
  explicit progress_bar(std::string label = {}, std::FILE* stream = stderr, int64_t width = 30)
      : label_(std::move(label)), stream_(stream), width_(width), terminal_(is_terminal(stream)) {}

  progress_bar& every(int64_t n) { every_ = std::max<int64_t>(1, n); return *this; }
  progress_bar& show_value(bool v) { show_value_ = v; return *this; }
  /// Redraw in place (a terminal) or write a line per tenth (anything else).
  progress_bar& terminal(bool v) { terminal_ = v; return *this; }
  bool terminal() const { return terminal_; }

  void on_begin(const run_info& info) {
    start_ = clock::now();
    if (label_.empty()) label_ = std::string(info.phase);
    last_tenth_ = 0;
    if (terminal_) draw(0, info.total_steps, nullptr);
  }

  void on_step(const step_info& info) {
    const int64_t done = info.step + 1;
    if (terminal_) {
      if (done % every_ != 0 && done != info.total_steps) return;
    } else {
      // A line when the run crosses a tenth (the last step included).
      const int64_t tenth = info.total_steps > 0 ? done * 10 / info.total_steps : 10;
      if (tenth <= last_tenth_) return;
      last_tenth_ = tenth;
    }
    double v = 0;
    if (show_value_) v = info.value.detach().to(torch::kFloat64).mean().item<double>();
    draw(done, info.total_steps, show_value_ ? &v : nullptr);
  }

  void on_end(const run_info& info) {
    if (terminal_) {
      draw(info.steps_done, info.total_steps, nullptr);
      std::fputc('\n', stream_);
    } else if (info.steps_done < info.total_steps) {
      draw(info.steps_done, info.total_steps, nullptr);  // stopped early: say where
    }
    std::fflush(stream_);
  }

 private:
  using clock = std::chrono::steady_clock;

  static bool is_terminal(std::FILE* stream) {
#if defined(_WIN32)
    return stream && _isatty(_fileno(stream));
#else
    return stream && isatty(fileno(stream));
#endif
  }

  void draw(int64_t done, int64_t total, const double* value) {
    const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const double secs = std::chrono::duration<double>(clock::now() - start_).count();
    if (terminal_) {
      const auto filled = static_cast<int64_t>(frac * static_cast<double>(width_));
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(static_cast<size_t>(width_), '.');
      std::fprintf(stream_, "\r%s [%s] %lld/%lld %.1fs", label_.c_str(), bar.c_str(),
                   static_cast<long long>(done), static_cast<long long>(total), secs);
    } else {
      std::fprintf(stream_, "%s %3d%% %lld/%lld %.1fs", label_.c_str(), static_cast<int>(frac * 100),
                   static_cast<long long>(done), static_cast<long long>(total), secs);
    }
    if (value) std::fprintf(stream_, "  mean %.4g", *value);
    if (!terminal_) std::fputc('\n', stream_);
    std::fflush(stream_);
  }

  std::string label_;
  std::FILE* stream_;
  int64_t width_;
  int64_t every_ = 1;
  bool show_value_ = true;
  bool terminal_;
  int64_t last_tenth_ = 0;
  clock::time_point start_ = clock::now();
};

}  // namespace tr0n
