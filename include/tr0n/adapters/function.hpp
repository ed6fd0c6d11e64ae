#pragma once
/// \file
/// Adapters that give a plain callable a role: `make_generator(callable, prior)`
/// and `make_encoder(callable, condition_dim)`. The callable is stored by value;
/// pass `std::ref(x)` to share one.
#include <tr0n/concepts/encoder.hpp>
#include <tr0n/concepts/generator.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/check.hpp>

#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <functional>
#include <utility>

namespace tr0n {

template <class Fn, Prior P>
  requires std::invocable<Fn&, const torch::Tensor&>
class generator_fn {
 public:
  using tr0n_tag = generator_tag;

  generator_fn(Fn fn, P prior) : fn_(std::move(fn)), prior_(std::move(prior)) {}

  torch::Tensor forward(const torch::Tensor& z) { return std::invoke(fn_, z); }
  const P& prior() const noexcept { return prior_; }

 private:
  Fn fn_;
  P prior_;
};

template <class Fn>
  requires std::invocable<Fn&, const torch::Tensor&>
class encoder_fn {
 public:
  using tr0n_tag = encoder_tag;

  encoder_fn(Fn fn, int64_t condition_dim) : fn_(std::move(fn)), condition_dim_(condition_dim) {
    detail::check_positive(condition_dim, "make_encoder: condition_dim");
  }

  torch::Tensor forward(const torch::Tensor& x) { return std::invoke(fn_, x); }
  int64_t condition_dim() const noexcept { return condition_dim_; }

 private:
  Fn fn_;
  int64_t condition_dim_;
};

template <class Fn, Prior P>
auto make_generator(Fn fn, P prior) {
  return generator_fn<Fn, P>(std::move(fn), std::move(prior));
}

template <class Fn>
auto make_encoder(Fn fn, int64_t condition_dim) {
  return encoder_fn<Fn>(std::move(fn), condition_dim);
}

}  // namespace tr0n
