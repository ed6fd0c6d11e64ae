#pragma once
// Private: the checks that a translator fits a generator's prior and an
// encoder, shared by the sampler and the trainer.
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/unwrap.hpp>

#include <string_view>

namespace tr0n::detail {

template <class T, class P, class F>
void check_translator_fits(const T& translator, const P& prior, const F& encoder, std::string_view who) {
  const auto& q = unwrap(translator);
  if (q.latent_dim() != prior.dim())
    fail(who, ": translator: latent_dim ", q.latent_dim(), " does not match the generator's prior dim ", prior.dim());
  if (q.condition_dim() != unwrap(encoder).condition_dim())
    fail(who, ": translator: condition_dim ", q.condition_dim(), " does not match the encoder's condition_dim ",
         unwrap(encoder).condition_dim());
}

}  // namespace tr0n::detail
