#pragma once
// `--prior`: the prior chosen on the command line, one spec per latent part.
#include "flags.hpp"

#include <tr0n/io/tensor_file.hpp>
#include <tr0n/priors/codebook.hpp>
#include <tr0n/priors/joint.hpp>
#include <tr0n/priors/standard_normal.hpp>
#include <tr0n/priors/truncated_normal.hpp>
#include <tr0n/priors/uniform.hpp>

#include <functional>
#include <limits>
#include <optional>
#include <vector>

namespace tr0n_cli {

/// The prior chosen on the command line: one prior per part of the latent
/// (`--latent-dim d1,d2,...`, `--prior SPEC1,SPEC2,...`), which the generator
/// gets as separate inputs; the library's `tr0n::joint_prior` composes the same
/// at compile time. Type erasure is fine here: it is called once per chunk to
/// draw starts, and its bounds are read once per run.
class cli_prior {
 public:
  /// `spec`: one spec per part of `parts`, comma-separated, or one for every part.
  static cli_prior parse(const std::string& spec, const std::vector<int64_t>& parts) {
    auto specs = split(spec, ',');
    if (specs.size() == 1) specs.assign(parts.size(), specs.front());
    if (specs.size() != parts.size())
      tr0n::fail("--prior ", spec, ": ", specs.size(), " specs for ", parts.size(),
                 " latent parts (--latent-dim); give one per part, comma-separated, or one for all");
    cli_prior p;
    for (size_t i = 0; i < parts.size(); ++i) p.add(specs[i], parts[i], parts.size() > 1 ? i : SIZE_MAX);
    return p;
  }

  int64_t dim() const { return dim_; }
  std::vector<int64_t> parts() const {
    std::vector<int64_t> widths;
    for (const auto& part : parts_) widths.push_back(part.width);
    return widths;
  }
  torch::Tensor sample(int64_t n, torch::TensorOptions o) const {
    if (parts_.size() == 1) return parts_.front().sample(n, o);
    std::vector<torch::Tensor> draws;
    for (const auto& part : parts_) draws.push_back(part.sample(n, o));
    return torch::cat(draws, 1);
  }
  /// Each part's box on its coordinates (infinite for a part without one).
  tr0n::box_bounds bounds() const {
    std::vector<tr0n::box> boxes;
    for (const auto& part : parts_) boxes.push_back(part.box);
    return tr0n::part_bounds(parts(), boxes);
  }
  /// The box every coordinate shares, if they share one.
  std::optional<tr0n::box> common_box() const {
    const auto& b = parts_.front().box;
    for (const auto& part : parts_)
      if (part.box.lo != b.lo || part.box.hi != b.hi) return std::nullopt;
    if (!std::isfinite(b.lo) || !std::isfinite(b.hi)) return std::nullopt;
    return b;
  }

 private:
  struct part {
    int64_t width;
    std::function<torch::Tensor(int64_t, torch::TensorOptions)> sample;
    tr0n::box box;
  };

  template <class P>
  void push(P p, int64_t width, std::optional<tr0n::box> b) {
    const double inf = std::numeric_limits<double>::infinity();
    parts_.push_back({width, [p](int64_t n, torch::TensorOptions o) { return p.sample(n, o); },
                      b.value_or(tr0n::box{-inf, inf})});
    dim_ += width;
  }

  void add(const std::string& spec, int64_t width, size_t index) {
    const auto fields = split(spec, ':');
    const std::string which = index == SIZE_MAX ? "--prior" : "--prior (part " + std::to_string(index + 1) + ")";
    if (fields[0] == "normal" && fields.size() == 1) return push(tr0n::standard_normal(width), width, std::nullopt);
    if (fields[0] == "truncated" && fields.size() == 2) {
      tr0n::truncated_normal p(width, number(fields[1], "--prior truncated:R"));
      return push(p, width, p.box());
    }
    if (fields[0] == "uniform" && (fields.size() == 1 || fields.size() == 3)) {
      tr0n::uniform p = fields.size() == 1 ? tr0n::uniform(width)
                                           : tr0n::uniform(width, number(fields[1], "--prior uniform:LO:HI"),
                                                           number(fields[2], "--prior uniform:LO:HI"));
      return push(p, width, p.box());
    }
    if (fields[0] == "codebook" && fields.size() >= 2) {
      const auto path = spec.substr(9);  // a path may hold ':'
      auto p = [&] {
        try {
          return tr0n::codebook_prior(tr0n::read_tensor_file(path));
        } catch (const std::invalid_argument& e) {
          tr0n::fail(which, " codebook:", path, ": ", tr0n::error_line(e));
        }
      }();
      if (p.dim() != width)
        tr0n::fail(which, " codebook:", path, ": rows of width ", p.dim(), " (", p.rows(),
                   " rows), but the latent part is ", width, " wide (--latent-dim)");
      return push(p, width, std::nullopt);
    }
    tr0n::fail(which, ": expected normal, truncated:R, uniform[:LO:HI] or codebook:FILE, got '", spec, "'");
  }

  int64_t dim_ = 0;
  std::vector<part> parts_;
};

}  // namespace tr0n_cli
