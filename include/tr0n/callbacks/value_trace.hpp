#pragma once
/// \file
/// `value_trace`: records the mean of each step's value on the host (the
/// energy trace of a sampling run, the loss trace of a training run). It
/// synchronises once per step, by design; the sampler's own
/// `record_trace(true)` keeps per-sample traces on the device instead.
#include <tr0n/concepts/callback.hpp>

#include <vector>

namespace tr0n {

class value_trace {
 public:
  void on_begin(const run_info&) { values_.clear(); }
  void on_step(const step_info& info) {
    values_.push_back(info.value.detach().to(torch::kFloat64).mean().item<double>());
  }
  const std::vector<double>& values() const noexcept { return values_; }

 private:
  std::vector<double> values_;
};

/// The energy trace of a sampling run.
using energy_trace = value_trace;
/// The loss trace of a training run.
using loss_trace = value_trace;

}  // namespace tr0n
