#pragma once
/// \file
/// Weighted sums of energy terms, composed at compile time with Boost.Hana:
/// `1.0 * neg_cosine{} + 0.1 * latent_prior{}` is an `energy_sum<weighted<neg_cosine>,
/// weighted<latent_prior>>`; evaluating it is a fold with no indirection, and
/// the terms share one `f(G(z))` through the context.
///
/// The operators live in namespace `tr0n`: for energy types declared in another
/// namespace, bring them in with `using tr0n::operator*; using tr0n::operator+;`.
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/detail/hooks.hpp>

#include <boost/hana/concat.hpp>
#include <boost/hana/drop_front.hpp>
#include <boost/hana/fold_left.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/front.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/unpack.hpp>
#include <torch/types.h>

#include <string_view>
#include <type_traits>
#include <utility>

namespace tr0n {

template <Energy E>
struct weighted {
  using tr0n_tag = energy_tag;

  double weight;
  E term;

  template <class Ctx>
    requires EnergyFor<E, Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    return weight * term(ctx);
  }

  void check_conditions(const torch::Tensor& c, std::string_view where) const {
    detail::check_energy_conditions(term, c, where);
  }
};

template <Energy... Terms>
  requires(sizeof...(Terms) >= 1)
struct energy_sum {
  using tr0n_tag = energy_tag;

  boost::hana::tuple<Terms...> terms;

  template <class Ctx>
    requires(EnergyFor<Terms, Ctx> && ...)
  torch::Tensor operator()(const Ctx& ctx) const {
    namespace hana = boost::hana;
    return hana::fold_left(hana::drop_front(terms), hana::front(terms)(ctx),
                           [&ctx](torch::Tensor acc, const auto& term) { return acc + term(ctx); });
  }

  void check_conditions(const torch::Tensor& c, std::string_view where) const {
    boost::hana::for_each(terms, [&](const auto& term) { detail::check_energy_conditions(term, c, where); });
  }
};

namespace detail {
template <class T>
struct is_energy_sum : std::false_type {};
template <class... T>
struct is_energy_sum<energy_sum<T...>> : std::true_type {};

template <class E>
auto as_terms(const E& e) {
  if constexpr (is_energy_sum<E>::value) {
    return e.terms;
  } else {
    return boost::hana::make_tuple(e);
  }
}
}  // namespace detail

template <Energy E>
constexpr weighted<E> operator*(double w, const E& e) {
  return {w, e};
}

template <Energy E>
constexpr weighted<E> operator*(double w, const weighted<E>& e) {
  return {w * e.weight, e.term};
}

template <Energy A, Energy B>
auto operator+(const A& a, const B& b) {
  auto all = boost::hana::concat(detail::as_terms(a), detail::as_terms(b));
  return boost::hana::unpack(std::move(all), [](auto... t) {
    return energy_sum<decltype(t)...>{boost::hana::make_tuple(std::move(t)...)};
  });
}

}  // namespace tr0n
