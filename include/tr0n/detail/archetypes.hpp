#pragma once
/// \file
/// Archetypes: the least a model of a concept offers, declared and never
/// defined, so a concept can be checked when no real sampler is at hand.
/// `archetype_energy_context` has exactly the interface of
/// `tr0n::energy_context` (`tr0n/energies/context.hpp`), the context the
/// sampler builds; an energy that compiles against one compiles against the
/// other (the concept tests check both).
#include <tr0n/concepts/prior.hpp>

#include <torch/types.h>

#include <cstdint>

namespace tr0n::detail {

struct archetype_prior {
  int64_t dim() const;
  torch::Tensor sample(int64_t, torch::TensorOptions) const;
  torch::Tensor log_prob(const torch::Tensor&) const;
  tr0n::box box() const;
};

struct archetype_encoder {
  torch::Tensor forward(const torch::Tensor&);
  int64_t condition_dim() const;
};

struct archetype_energy_context {
  const torch::Tensor& z() const noexcept;
  const torch::Tensor& x() const noexcept;
  const torch::Tensor& condition() const noexcept;
  const archetype_prior& prior() const noexcept;
  const torch::Tensor& features() const;
  torch::Tensor encode(const torch::Tensor& data) const;
};

}  // namespace tr0n::detail
