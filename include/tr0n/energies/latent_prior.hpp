#pragma once
/// \file
/// `latent_prior`: E = -log p(z), the generator's own prior. Added to a data
/// term it makes Langevin dynamics target p(z) exp(-E_data); it needs a prior
/// with a density (`PriorWithDensity`), which is checked at compile time.
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>

#include <torch/types.h>

#include <type_traits>
#include <utility>

namespace tr0n {

struct latent_prior {
  using tr0n_tag = energy_tag;

  template <class Ctx>
    requires PriorWithDensity<std::remove_cvref_t<decltype(std::declval<const Ctx&>().prior())>>
  torch::Tensor operator()(const Ctx& ctx) const {
    return -ctx.prior().log_prob(ctx.z());
  }
};

static_assert(Energy<latent_prior>);

}  // namespace tr0n
