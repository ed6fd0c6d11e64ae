#pragma once
/// \file
/// `early_stopping`: stops a run once the mean value (energy or loss) has not
/// improved by more than `min_delta` for `patience` consecutive steps.
#include <tr0n/concepts/callback.hpp>
#include <tr0n/detail/check.hpp>

#include <cstdint>
#include <limits>

namespace tr0n {

class early_stopping {
 public:
  explicit early_stopping(int64_t patience = 10, double min_delta = 0.0)
      : patience_(patience), min_delta_(min_delta) {
    detail::check_positive(patience, "early_stopping: patience");
    if (!(min_delta >= 0)) detail::fail("early_stopping: min_delta: expected >= 0, got ", min_delta);
  }

  void on_begin(const run_info&) {
    best_ = std::numeric_limits<double>::infinity();
    stale_ = 0;
  }

  bool on_step(const step_info& info) {
    const double v = info.value.detach().to(torch::kFloat64).mean().item<double>();
    if (v < best_ - min_delta_) {
      best_ = v;
      stale_ = 0;
    } else {
      ++stale_;
    }
    return stale_ >= patience_;
  }

  double best() const noexcept { return best_; }

 private:
  int64_t patience_;
  double min_delta_;
  double best_ = std::numeric_limits<double>::infinity();
  int64_t stale_ = 0;
};

}  // namespace tr0n
