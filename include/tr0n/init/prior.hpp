#pragma once
/// \file
/// `init::prior`: chains start at `z ~ p(z)`, the naive baseline the paper
/// compares against.
#include <tr0n/concepts/init_policy.hpp>
#include <tr0n/init/state.hpp>

#include <torch/types.h>

#include <string_view>

namespace tr0n {

namespace init {

struct prior {
  static constexpr std::string_view name = "prior";

  template <class S>
  latent_state start(S& s, const torch::Tensor& c) const {
    return {s.prior().sample(c.size(0), c.options())};
  }
  torch::Tensor latent(const latent_state& st) const { return st.leaf; }
};

}  // namespace init
}  // namespace tr0n
