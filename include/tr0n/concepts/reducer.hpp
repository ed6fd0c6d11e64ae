#pragma once
/// \file
/// # Concept `Reducer`: how one process's translator training cooperates with others.
///
/// **Definition.** A type `R` with, for a run of one or more processes:
///  - `r.agree_plan(plan) -> checkpoint_plan`: the first process's plan
///    (resume? write checkpoints? how often?), everywhere;
///  - `r.start(params)`: every process starts from the first's parameters;
///  - `r.agree_seed(seed) -> uint64_t`, `r.stream_seed(seed) -> uint64_t`: the
///    run's seed, the first process's everywhere, and this process's stream from it;
///  - `r.read_checkpoint(path) -> std::string`: the checkpoint's bytes, read by
///    the first process and sent to all;
///  - `r.rank()`, `r.world_size()`: this process's place and the number of processes;
///  - `r.gather_streams(mine) -> std::vector<stream_state>`: every process's
///    random streams, in rank order, on the process that writes;
///  - `r.std_of(z) -> torch::Tensor`: the per-dimension std `[d]` of the latents
///    every process drew;
///  - `r.average(grads, loss)`: gradients and the loss become their means over
///    the processes, in place;
///  - `r.stop(asked) -> bool`: the same answer everywhere, a step after any
///    process asked;
///  - `r.writes() -> bool`: whether this process writes files.
///
/// **Laws.** Every process calls every member in the same order (they are
/// collective); the answers of `agree_plan`, `agree_seed`, `read_checkpoint`
/// and `stop` are the same everywhere; with one process every member is the
/// identity (`average` leaves its arguments, `std_of(z)` is `z.std(0)`), so a
/// run alone and a group of one train bit for bit alike.
///
/// **Models.** `detail::no_reducer` (one process, `train_translator`) and
/// `distributed::detail::group_reducer` (a c10d group,
/// `distributed::train_translator`).
///
/// **Rationale.** Data-parallel training differs from training alone only at
/// these points; one training loop over a `Reducer` keeps the two from
/// drifting apart, and a checkpoint written by either resumes in the same loop.
#include <tr0n/detail/training_state.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

namespace tr0n {

template <class R>
concept Reducer = requires(R& r, const R& cr, detail::checkpoint_plan plan, std::vector<torch::Tensor>& params,
                           torch::Tensor& loss, const torch::Tensor& z, uint64_t seed, const std::string& path,
                           detail::stream_state mine, bool asked) {
  { r.agree_plan(plan) } -> std::same_as<detail::checkpoint_plan>;
  r.start(params);
  { r.agree_seed(seed) } -> std::convertible_to<uint64_t>;
  { cr.stream_seed(seed) } -> std::convertible_to<uint64_t>;
  { r.read_checkpoint(path) } -> std::convertible_to<std::string>;
  { cr.rank() } -> std::convertible_to<int64_t>;
  { cr.world_size() } -> std::convertible_to<int64_t>;
  { r.gather_streams(std::move(mine)) } -> std::same_as<std::vector<detail::stream_state>>;
  { r.std_of(z) } -> std::same_as<torch::Tensor>;
  r.average(params, loss);
  { r.stop(asked) } -> std::convertible_to<bool>;
  { cr.writes() } -> std::convertible_to<bool>;
};

}  // namespace tr0n
