#pragma once
/// \file
/// The pieces of a training run that processes exchange (`Reducer`) and that a
/// checkpoint records.
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace tr0n::detail {

/// Whether a run resumes and writes checkpoints, and how often.
struct checkpoint_plan {
  bool resume = false, write = false;
  int64_t every = 0;
};

/// One process's random streams and place in its synthetic set.
struct stream_state {
  torch::Tensor rng;     ///< the tensor generator's state
  std::string host_rng;  ///< the host engine, as text
  torch::Tensor order;   ///< the epoch's permutation (synthetic set), or undefined
  int64_t cursor = 0;
};

}  // namespace tr0n::detail
