#pragma once
/// \file
/// # Concepts `StepSchedule` and `NoisePolicy`: the Langevin step `eta_t` and noise `sigma_t`.
///
/// **Definition.** `s.step_size(t, T) -> double` for step `t` of `T`;
/// `n.sigma(eta) -> double` for a step of size `eta`.
///
/// **Laws.** Both are pure functions of their arguments, evaluated on the host
/// once per step (no tensor, no sync). `step_size` is finite and > 0 for every
/// `0 <= t < T` (the sampler checks this at the call); `sigma` is finite and >= 0.
///
/// **Models.** Schedules: `constant_step`, `linear_decay`, `cosine_decay`,
/// `exponential_decay`. Noise: `langevin_noise` (exact Langevin,
/// `sigma = sqrt(2 eta / beta)`), `fixed_noise` (given separately, as the
/// official code does), `no_noise` (gradient descent).
///
/// **Rationale.** Policies with parameters are aggregates
/// (`cosine_decay{.eta0 = 0.1, .eta_min = 0.001}`); the sampler stores them
/// `[[no_unique_address]]` so an empty policy costs nothing.
#include <concepts>
#include <cstdint>

namespace tr0n {

template <class S>
concept StepSchedule = std::copy_constructible<S> && requires(const S& s, int64_t t, int64_t total) {
  { s.step_size(t, total) } -> std::convertible_to<double>;
};

template <class N>
concept NoisePolicy = std::copy_constructible<N> && requires(const N& n, double eta) {
  { n.sigma(eta) } -> std::convertible_to<double>;
};

}  // namespace tr0n
