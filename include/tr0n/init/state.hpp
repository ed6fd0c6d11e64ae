#pragma once
/// \file
/// `latent_state`: the state of an initialisation policy whose latents are the
/// chain's leaf tensor itself (every policy here but the hybrid mixture start).
#include <torch/types.h>

namespace tr0n {

/// A state whose latents are the leaf itself.
struct latent_state {
  torch::Tensor leaf;
};

}  // namespace tr0n
