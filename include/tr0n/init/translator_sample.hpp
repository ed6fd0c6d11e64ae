#pragma once
/// \file
/// `init::translator_sample`: chains start at `z ~ q(z | c)`, the paper's TR0N.
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/init/prior.hpp>
#include <tr0n/init/state.hpp>

#include <torch/types.h>

#include <string_view>

namespace tr0n::init {

struct translator_sample {
  static constexpr std::string_view name = "translator_sample";
  static constexpr bool needs_translator = true;

  template <class S>
  latent_state start(S& s, const torch::Tensor& c) const {
    torch::NoGradGuard no_grad;
    return {detail::unwrap(s.translator()).sample(c, 1)};
  }
  torch::Tensor latent(const latent_state& st) const { return st.leaf; }
};

}  // namespace tr0n::init
