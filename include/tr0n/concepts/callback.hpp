#pragma once
/// \file
/// # Concept `Callback`: observers of a sampling or training run (ensmallen style).
///
/// **Definition.** At least one of these hooks, each optional:
///  - `cb.on_begin(const run_info&)`: before the first step;
///  - `cb.on_step(const step_info&)`: after each step; returning `true` stops the run;
///  - `cb.on_end(const run_info&)`: after the last step.
///
/// The same callbacks serve `sampler::sample` (`phase == "sample"`, `value` is
/// the per-sample energy `[M]` before the step) and `train_translator`
/// (`phase == "train"`, `value` is the scalar loss of the step).
///
/// **Laws.** `value` lives on the run's device; a hook that reads it on the host
/// (`.item()`) synchronises, which the run itself never does. Callbacks are
/// passed as a trailing pack and held by reference for the call. Every
/// callback sees every step, even after another asked to stop; a hook never
/// changes the run's numbers, only whether it goes on.
///
/// **Models.** `progress_bar`, `value_trace` (`energy_trace`, `loss_trace`),
/// `early_stopping`, and any lambda-holding struct with one of the hooks.
///
/// **Rationale.** ensmallen's design: a variadic pack resolved at compile time
/// costs nothing when empty and needs no base class, and `on_step` returning
/// `bool` gives early stopping without exceptions. Hooks are detected one by
/// one, so a callback implements only what it needs.
#include <torch/types.h>

#include <cstdint>
#include <string_view>

namespace tr0n {

struct run_info {
  std::string_view phase;  ///< "sample" or "train"
  int64_t total_steps;     ///< planned steps
  int64_t steps_done;      ///< 0 in on_begin
};

struct step_info {
  std::string_view phase;
  int64_t step;  ///< 0-based
  int64_t total_steps;
  const torch::Tensor& value;
};

template <class C>
concept Callback = requires(C& c, const run_info& r) { c.on_begin(r); } ||
                   requires(C& c, const step_info& s) { c.on_step(s); } ||
                   requires(C& c, const run_info& r) { c.on_end(r); };

}  // namespace tr0n
