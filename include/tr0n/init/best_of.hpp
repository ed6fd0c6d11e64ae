#pragma once
/// \file
/// `init::best_of<N, Base>`: draws `N` candidate starts from `Base` and keeps,
/// per chain, the one with the lowest energy (FuseDream-style multi-start).
/// Costs `N` energy evaluations per chain, without gradients. The kept
/// candidate continues as a plain latent, whatever `Base`'s state was.
/// `N` is the default of the run-time member `candidates`, so
/// `best_of<>{.candidates = n}` picks the count at run time.
#include <tr0n/concepts/init_policy.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/init/prior.hpp>
#include <tr0n/init/translator_sample.hpp>
#include <tr0n/init/state.hpp>

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace tr0n::init {

template <int64_t N = 8, class Base = translator_sample>
  requires(N >= 1)
struct best_of {
  static constexpr std::string_view name = "best_of";
  static constexpr bool needs_translator = needs_translator_v<Base>;
  static constexpr bool needs_mixture = needs_mixture_v<Base>;

  int64_t candidates = N;
  [[no_unique_address]] Base base{};

  template <class S>
  latent_state start(S& s, const torch::Tensor& c) {
    if (candidates < 1) detail::fail("best_of: candidates: expected >= 1, got ", candidates);
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> zs, es;
    zs.reserve(static_cast<size_t>(candidates));
    es.reserve(static_cast<size_t>(candidates));
    for (int64_t i = 0; i < candidates; ++i) {
      auto z = base.latent(base.start(s, c)).detach();
      // Non-finite candidates (NaN, +inf and -inf alike) never win.
      auto e = s.evaluate(z, c);
      es.push_back(torch::where(torch::isfinite(e), e, torch::full_like(e, std::numeric_limits<double>::infinity())));
      zs.push_back(z);
    }
    auto best = torch::stack(es).argmin(0);  // [M]
    auto all = torch::stack(zs);             // [N, M, d]
    auto idx = best.view({1, -1, 1}).expand({1, all.size(1), all.size(2)});
    return {all.gather(0, idx).squeeze(0)};
  }
  torch::Tensor latent(const latent_state& st) const { return st.leaf; }
};

}  // namespace tr0n::init
