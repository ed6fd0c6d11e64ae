#pragma once
/// \file
/// What a sampling run returns (`sample_result`), and what it hands over chunk
/// by chunk (`sample_chunk`); apart from the sampler, so file writers and
/// other consumers need not include it.
#include <torch/types.h>

#include <cstdint>

namespace tr0n {

/// Per-sample results, condition-major: row `i * n + j` is sample `j` of condition `i`.
struct sample_result {
  torch::Tensor z;       ///< `[M, d]`
  torch::Tensor x;       ///< `G(z)`
  torch::Tensor energy;  ///< `[M]`, final energies
  torch::Tensor ok;      ///< `[M]` bool: false where the energy or latent became non-finite
  torch::Tensor trace;   ///< `[steps_run + 1, M]` when `record_trace`, else undefined
  int64_t steps_run = 0;     ///< Langevin steps taken (fewer than T after an early stop)
  int64_t grad_evals = 0;    ///< energy gradients per chain
  int64_t energy_evals = 0;  ///< energy evaluations per chain, gradients included
};

/// One chunk's final results, for `sampler::sample_chunks`: rows
/// `[first, first + z.size(0))` of the run, condition-major.
struct sample_chunk {
  int64_t first;
  const torch::Tensor& z;
  const torch::Tensor& x;
  const torch::Tensor& energy;
  const torch::Tensor& ok;
};

}  // namespace tr0n
