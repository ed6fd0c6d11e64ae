#pragma once
/// \file
/// Step-size schedules for Langevin dynamics: `eta_t` for step `t` of `T`.
/// The decays reach `eta_min` at `t = T`, one step after the last update, so
/// every step that is taken has `eta > 0` even with the default `eta_min = 0`
/// (the sampler rejects `eta = 0`).
#include <tr0n/concepts/step_schedule.hpp>

#include <cmath>
#include <cstdint>
#include <numbers>

namespace tr0n {

/// eta_t = eta.
struct constant_step {
  double eta = 0.01;
  constexpr double step_size(int64_t, int64_t) const noexcept { return eta; }
};

/// Linear from eta0 at t = 0 towards eta_min at t = T.
struct linear_decay {
  double eta0 = 0.01;
  double eta_min = 0.0;
  constexpr double step_size(int64_t t, int64_t total) const noexcept {
    if (total <= 0) return eta0;
    return eta0 + (eta_min - eta0) * static_cast<double>(t) / static_cast<double>(total);
  }
};

/// Half a cosine from eta0 at t = 0 towards eta_min at t = T.
struct cosine_decay {
  double eta0 = 0.01;
  double eta_min = 0.0;
  double step_size(int64_t t, int64_t total) const noexcept {
    if (total <= 0) return eta0;
    const double p = static_cast<double>(t) / static_cast<double>(total);
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
