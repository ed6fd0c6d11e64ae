#pragma once
/// \file
/// # Concept `NoisePolicy`: the Langevin noise `sigma` of a step of size `eta`.
///
/// **Definition.** `n.sigma(eta) -> double`.
///
/// **Laws.** A pure function of `eta`, evaluated on the host once per step (no
/// tensor, no sync); finite and >= 0 (the sampler checks this at the call).
///
/// **Models.** `langevin_noise` (exact Langevin, `sigma = sqrt(2 eta / beta)`),
/// `fixed_noise` (given separately, as the official code does), `no_noise`
/// (gradient descent) (`tr0n/schedules/noise.hpp`).
///
/// **Rationale.** Kept apart from the step schedule: the official code sets its
/// noise independently of its step size, exact Langevin ties them; either pairs
/// with any schedule.
#include <concepts>

namespace tr0n {

template <class N>
concept NoisePolicy = std::copy_constructible<N> && requires(const N& n, double eta) {
  { n.sigma(eta) } -> std::convertible_to<double>;
};

}  // namespace tr0n
