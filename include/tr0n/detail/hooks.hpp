#pragma once
/// \file
/// Calls to the optional hooks of the concepts: a callback's `on_begin`,
/// `on_step` and `on_end` (`Callback`), and an energy's `check_conditions`
/// (`Energy`), each detected on its own so a model implements only what it needs.
#include <tr0n/concepts/callback.hpp>

#include <torch/types.h>

#include <string_view>
#include <type_traits>

namespace tr0n::detail {

template <class... Cbs>
void notify_begin(const run_info& info, Cbs&... cbs) {
  (
      [&] {
        if constexpr (requires { cbs.on_begin(info); }) cbs.on_begin(info);
      }(),
      ...);
}

/// True when any callback asks to stop. Every callback sees every step.
template <class... Cbs>
bool notify_step(const step_info& info, Cbs&... cbs) {
  bool stop = false;
  (
      [&] {
        if constexpr (requires { cbs.on_step(info); }) {
          if constexpr (std::is_convertible_v<decltype(cbs.on_step(info)), bool>) {
            stop = static_cast<bool>(cbs.on_step(info)) || stop;
          } else {
            cbs.on_step(info);
          }
        }
      }(),
      ...);
  return stop;
}

template <class... Cbs>
void notify_end(const run_info& info, Cbs&... cbs) {
  (
      [&] {
        if constexpr (requires { cbs.on_end(info); }) cbs.on_end(info);
      }(),
      ...);
}

/// Runs `e`'s `check_conditions` hook when it has one.
template <class E>
void check_energy_conditions(const E& e, const torch::Tensor& conditions, std::string_view where) {
  if constexpr (requires { e.check_conditions(conditions, where); }) e.check_conditions(conditions, where);
}

}  // namespace tr0n::detail
