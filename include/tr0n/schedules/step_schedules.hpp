#pragma once
/// \file
/// Step-size schedules for Langevin dynamics: `eta_t` for step `t` of `T`.
#include <tr0n/concepts/step_schedule.hpp>

#include <cmath>
#include <numbers>

namespace tr0n {

/// eta_t = eta.
struct constant_step {
  double eta = 0.01;
  constexpr double step_size(int64_t, int64_t) const noexcept { return eta; }
};

/// Linear from eta0 at t = 0 to eta_min at t = T - 1.
struct linear_decay {
  double eta0 = 0.01;
  double eta_min = 0.0;
  constexpr double step_size(int64_t t, int64_t total) const noexcept {
    if (total <= 1) return eta0;
    return eta0 + (eta_min - eta0) * static_cast<double>(t) / static_cast<double>(total - 1);
  }
};

/// Half a cosine from eta0 at t = 0 to eta_min at t = T - 1.
struct cosine_decay {
  double eta0 = 0.01;
  double eta_min = 0.0;
  double step_size(int64_t t, int64_t total) const noexcept {
    if (total <= 1) return eta0;
    const double p = static_cast<double>(t) / static_cast<double>(total - 1);
    return eta_min + 0.5 * (eta0 - eta_min) * (1.0 + std::cos(std::numbers::pi * p));
  }
};

/// eta_t = eta0 * gamma^t.
struct exponential_decay {
  double eta0 = 0.01;
  double gamma = 0.99;
  double step_size(int64_t t, int64_t) const noexcept { return eta0 * std::pow(gamma, static_cast<double>(t)); }
};

static_assert(StepSchedule<constant_step> && StepSchedule<linear_decay> && StepSchedule<cosine_decay> &&
              StepSchedule<exponential_decay>);

}  // namespace tr0n
