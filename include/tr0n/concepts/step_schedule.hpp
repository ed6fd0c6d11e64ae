#pragma once
/// \file
/// # Concept `StepSchedule`: the Langevin step size `eta_t`.
///
/// **Definition.** `s.step_size(t, T) -> double` for step `t` of `T`.
///
/// **Laws.** A pure function of its arguments, evaluated on the host once per
/// step (no tensor, no sync); finite and > 0 for every `0 <= t < T` (the
/// sampler checks this at the call).
///
/// **Models.** `constant_step`, `linear_decay`, `cosine_decay`,
/// `exponential_decay` (`tr0n/schedules/step_schedules.hpp`).
///
/// **Rationale.** Policies with parameters are aggregates
/// (`cosine_decay{.eta0 = 0.1, .eta_min = 0.001}`); the sampler stores them
/// `[[no_unique_address]]` so an empty policy costs nothing. The noise that
/// goes with a step is its own concept, `NoisePolicy`.
#include <concepts>
#include <cstdint>

namespace tr0n {

template <class S>
concept StepSchedule = std::copy_constructible<S> && requires(const S& s, int64_t t, int64_t total) {
  { s.step_size(t, total) } -> std::convertible_to<double>;
};

}  // namespace tr0n
