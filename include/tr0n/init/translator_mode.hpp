#pragma once
/// \file
/// `init::translator_mode`: each chain starts at the mean of the most likely
/// component of `q(z | c)`, the official code's evaluation start
/// (`argmax` over mixture logits). Deterministic: every chain of one
/// condition starts at the same point, so diversity comes only from the
/// Langevin noise.
#include <tr0n/concepts/translator.hpp>
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/init/prior.hpp>
#include <tr0n/init/state.hpp>
#include <tr0n/translators/translator_conditions.hpp>

#include <torch/types.h>

#include <string_view>

namespace tr0n::init {

struct translator_mode {
  static constexpr std::string_view name = "translator_mode";
  static constexpr bool needs_translator = true;
  static constexpr bool needs_mixture = true;

  template <class S>
  latent_state start(S& s, const torch::Tensor& c) const {
    torch::NoGradGuard no_grad;
    return {mode_of(detail::unwrap(s.translator()).mixture(c))};
  }
  torch::Tensor latent(const latent_state& st) const { return st.leaf; }
};

}  // namespace tr0n::init
