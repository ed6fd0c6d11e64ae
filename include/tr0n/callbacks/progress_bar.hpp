#pragma once
/// \file
/// `progress_bar`: a one-line bar on a stream (stderr by default), for both
/// sampling and training. It reads the step's value (one host sync per redraw)
/// only every `every` steps; `show_value(false)` avoids even that.
#include <tr0n/concepts/callback.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace tr0n {

class progress_bar {
 public:
  explicit progress_bar(std::string label = {}, std::FILE* stream = stderr, int64_t width = 30)
      : label_(std::move(label)), stream_(stream), width_(width) {}

  progress_bar& every(int64_t n) { every_ = std::max<int64_t>(1, n); return *this; }
  progress_bar& show_value(bool v) { show_value_ = v; return *this; }

  void on_begin(const run_info& info) {
    start_ = clock::now();
    if (label_.empty()) label_ = std::string(info.phase);
    draw(0, info.total_steps, nullptr);
  }

  void on_step(const step_info& info) {
    if ((info.step + 1) % every_ != 0 && info.step + 1 != info.total_steps) return;
    double v = 0;
    if (show_value_) v = info.value.detach().to(torch::kFloat64).mean().item<double>();
    draw(info.step + 1, info.total_steps, show_value_ ? &v : nullptr);
  }

  void on_end(const run_info& info) {
    draw(info.steps_done, info.total_steps, nullptr);
    std::fputc('\n', stream_);
    std::fflush(stream_);
  }

 private:
  using clock = std::chrono::steady_clock;

  void draw(int64_t done, int64_t total, const double* value) {
    const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const auto filled = static_cast<int64_t>(frac * static_cast<double>(width_));
    const double secs = std::chrono::duration<double>(clock::now() - start_).count();
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(static_cast<size_t>(width_), '.');
    std::fprintf(stream_, "\r%s [%s] %lld/%lld %.1fs", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total), secs);
    if (value) std::fprintf(stream_, "  mean %.4g", *value);
    std::fflush(stream_);
  }

  std::string label_;
  std::FILE* stream_;
  int64_t width_;
  int64_t every_ = 1;
  bool show_value_ = true;
  clock::time_point start_ = clock::now();
};

}  // namespace tr0n
