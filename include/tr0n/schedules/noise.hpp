#pragma once
/// \file
/// Noise policies: the standard deviation `sigma_t` of the Gaussian noise added
/// at a Langevin step of size `eta_t`.
#include <tr0n/concepts/noise_policy.hpp>

#include <cmath>

namespace tr0n {

/// Exact (unadjusted) Langevin dynamics at inverse temperature beta:
/// sigma = sqrt(2 eta / beta); the chain targets exp(-beta E).
struct langevin_noise {
  double beta = 1.0;
  double sigma(double eta) const noexcept { return std::sqrt(2.0 * eta / beta); }
};

/// A noise scale given separately from the step, as the official code's SGLD.
struct fixed_noise {
  double std = 0.0;
  constexpr double sigma(double) const noexcept { return std; }
};

/// No noise: plain gradient descent on the energy.
struct no_noise {
  constexpr double sigma(double) const noexcept { return 0.0; }
};

static_assert(NoisePolicy<langevin_noise> && NoisePolicy<fixed_noise> && NoisePolicy<no_noise>);

}  // namespace tr0n
