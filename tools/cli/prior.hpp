#pragma once
// `--prior`: the prior chosen on the command line.
#include "flags.hpp"

#include <tr0n/priors/standard_normal.hpp>
#include <tr0n/priors/truncated_normal.hpp>
#include <tr0n/priors/uniform.hpp>

#include <functional>
#include <limits>
#include <optional>

namespace tr0n_cli {

/// The prior chosen on the command line. Type erasure is fine here: it is
/// called once per run to draw starts, and for a box lookup per step.
class cli_prior {
 public:
  static cli_prior parse(const std::string& spec, int64_t dim) {
    auto fields = split(spec, ':');
    if (fields[0] == "normal" && fields.size() == 1) return cli_prior(dim, tr0n::standard_normal(dim), std::nullopt);
    if (fields[0] == "truncated" && fields.size() == 2) {
      tr0n::truncated_normal p(dim, number(fields[1], "--prior truncated:R"));
      return cli_prior(dim, p, p.box());
    }
    if (fields[0] == "uniform" && (fields.size() == 1 || fields.size() == 3)) {
      tr0n::uniform p = fields.size() == 1 ? tr0n::uniform(dim)
                                           : tr0n::uniform(dim, number(fields[1], "--prior uniform:LO:HI"),
                                                           number(fields[2], "--prior uniform:LO:HI"));
      return cli_prior(dim, p, p.box());
    }
    tr0n::fail("--prior: expected normal, truncated:R or uniform[:LO:HI], got '", spec, "'");
  }

  int64_t dim() const { return dim_; }
  torch::Tensor sample(int64_t n, torch::TensorOptions o) const { return sample_(n, o); }
  tr0n::box box() const {
    const double inf = std::numeric_limits<double>::infinity();
    return box_.value_or(tr0n::box{-inf, inf});
  }

 private:
  template <class P>
  cli_prior(int64_t dim, P p, std::optional<tr0n::box> b)
      : dim_(dim), sample_([p](int64_t n, torch::TensorOptions o) { return p.sample(n, o); }), box_(b) {}

  int64_t dim_;
  std::function<torch::Tensor(int64_t, torch::TensorOptions)> sample_;
  std::optional<tr0n::box> box_;
};

}  // namespace tr0n_cli
