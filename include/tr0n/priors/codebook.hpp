#pragma once
/// \file
/// `codebook_prior(table)`: rows of a `[K, d]` table drawn uniformly, as the
/// official BigGAN translator draws class embeddings (`y_dist_type =
/// categorical`: one row of the shared class-embedding table per sample).
/// Discrete, so it has no density; it has no box either (the official code
/// moves `y` freely during the Langevin steps).
///
/// ```
/// tr0n::codebook_prior y(tr0n::read_tensor("biggan_classes.pt"));  // [1000, 128]
/// auto rows = y.sample(4, torch::kFloat32);                         // [4, 128]
/// ```
#include <tr0n/concepts/prior.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/random.hpp>

#include <torch/types.h>

#include <cstdint>

namespace tr0n {

class codebook_prior {
 public:
  /// `table`: floating `[K, d]`, finite, K >= 1; kept as float32 on the CPU
  /// and moved to a draw's device and dtype.
  explicit codebook_prior(const torch::Tensor& table) {
    if (!table.defined() || table.dim() != 2 || table.size(0) < 1 || table.size(1) < 1 ||
        !table.is_floating_point())
      detail::fail("codebook_prior: table: expected a floating tensor [K, d] with K, d >= 1, got ",
                   table.defined() ? detail::shape_of(table) : std::string("an undefined tensor"));
    table_ = table.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    detail::check_finite(table_, "codebook_prior: table");
  }

  int64_t dim() const noexcept { return table_.size(1); }
  int64_t rows() const noexcept { return table_.size(0); }
  const torch::Tensor& table() const noexcept { return table_; }

  /// `n` rows, each drawn uniformly from the table (per chain through
  /// `tr0n::random`, so a chain's row does not depend on the chunking).
  torch::Tensor sample(int64_t n, torch::TensorOptions options = {}) const {
    const auto device = options.device_opt().value_or(torch::kCPU);
    const auto dtype = options.dtype_opt() ? options.dtype().toScalarType() : torch::kFloat32;
    // The indices are drawn on the run's device, where its generator lives.
    const auto index = random::randint(0, table_.size(0), {n}, torch::TensorOptions(torch::kLong).device(device));
    return table_.to(device, dtype).index_select(0, index);
  }

 private:
  torch::Tensor table_;
};

static_assert(Prior<codebook_prior> && !PriorWithDensity<codebook_prior> && !BoxedPrior<codebook_prior>);

}  // namespace tr0n
