#pragma once
/// \file
/// Sharded sampling over a `process_group`: the `N * n` chains of a run are
/// cut into the sampler's stream blocks (`stream_block`, 64 chains), each rank
/// samples a contiguous share of whole blocks, each block from its own stream
/// (`sampler_options::first_block`), and rank 0 gathers the results in the
/// original order. So the result equals a single-process run of the same
/// sampler and seed, up to the rounding of batched kernels (bitwise on CPU in
/// the runs measured). Alone, it is `s.sample(conditions, n)`.
///
/// ```
/// auto group = tr0n::distributed::process_group::from_environment();
/// tr0n::sampler s(generator, classifier, tr0n::cross_entropy{}, q, tr0n::sampler_options().steps(10).seed(0));
/// auto r = tr0n::distributed::sample(group, s, conditions, 8);
/// if (group.is_root()) tr0n::write_samples("samples.pt", r, conditions);
/// ```
#include <tr0n/distributed/process_group.hpp>
#include <tr0n/random.hpp>
#include <tr0n/sampling/sampler.hpp>

#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace tr0n::distributed {

/// Rank `rank`'s share of `blocks` blocks among `world` ranks, `[first, last)`:
/// contiguous, sizes differing by at most one, the larger ones first (rank 0
/// always has one when there is one).
inline std::pair<int64_t, int64_t> block_share(int64_t blocks, int64_t rank, int64_t world) {
  auto edge = [&](int64_t r) { return (blocks * r + world - 1) / world; };
  return {edge(rank), edge(rank + 1)};
}

/// `n` samples for each of the `N` conditions, sharded over `group`. On rank 0,
/// the whole run's result (`trace` is not gathered); on the others, their own
/// share. The sampler's options must carry a seed (every rank needs the same).
template <class Sampler, Callback... Cbs>
sample_result sample(process_group& group, Sampler& s, const torch::Tensor& conditions, int64_t n,
                     Cbs&&... callbacks) {
  if (group.alone()) return s.sample(conditions, n, callbacks...);
  auto options = s.options();
  if (!options.seed())
    tr0n::detail::fail("distributed::sample: the sampler's options need a seed: every rank must draw from the same run");
  if (n <= 0) tr0n::detail::fail("distributed::sample: n: expected samples per condition > 0, got ", n);
  const int64_t m = conditions.size(0) * n, block = options.stream_block();
  const auto [first, last] = block_share((m + block - 1) / block, group.rank(), group.world_size());
  const int64_t begin = std::min(m, first * block), end = std::min(m, last * block);
  sample_result mine;
  if (end > begin) {
    const auto rows = conditions.repeat_interleave(n, 0).narrow(0, begin, end - begin);
    s.set_options(sampler_options(options).first_block(options.first_block() + first));
    try {
      mine = s.sample(rows, 1, callbacks...);
    } catch (...) {
      s.set_options(options);
      throw;
    }
    s.set_options(options);
  } else {
    // No chains here: empty results of the right shapes.
    torch::NoGradGuard no_grad;
    const auto z = s.prior().sample(0, conditions.options());
    mine.z = z;
    mine.x = tr0n::detail::forward_in(s.options().precision(), tr0n::detail::unwrap(s.generator()), z);
    mine.energy = torch::empty({0}, conditions.options());
    mine.ok = torch::empty({0}, conditions.options().dtype(torch::kBool));
  }
  auto gather = [&](const torch::Tensor& t) {
    auto parts = group.gather(t.contiguous());
    return parts.empty() ? torch::Tensor() : torch::cat(parts);
  };
  auto z = gather(mine.z), x = gather(mine.x), energy = gather(mine.energy), ok = gather(mine.ok.to(torch::kUInt8));
  if (!group.is_root()) return mine;
  sample_result r;
  r.z = z, r.x = x, r.energy = energy, r.ok = ok.to(torch::kBool);
  r.steps_run = mine.steps_run, r.grad_evals = mine.grad_evals, r.energy_evals = mine.energy_evals;
  return r;
}

}  // namespace tr0n::distributed
