// The init policies: the box clamp of every start, best_of, the mixture start
// and the parity starts.
#include "support/toy_models.hpp"
#include "support/problems.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace tr0n;
using namespace tr0n_test;

namespace {
/// |z|^2, but -inf right of z_0 = 1: a broken region that must never win.
struct minus_inf_beyond_one {
  using tr0n_tag = energy_tag;
  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    auto e = ctx.z().pow(2).sum(-1);
    return torch::where(ctx.z().select(1, 0) > 1, torch::full_like(e, -INFINITY), e);
  }
};
}  // namespace

TEST_CASE("starts are clamped into a box prior's support before the first evaluation", "[sampler][box]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, uniform(2, -1.0, 1.0));
  identity_encoder f{2};
  // An untrained translator of std 5: most draws fall outside [-1, 1]^2.
  torch::manual_seed(3);
  mixture_translator q(mixture_translator_options(2, 2).init_std(5.0));
  const auto energy = 1.0 * squared_distance{} + 1.0 * latent_prior{};
  for (int64_t steps : {0, 5}) {
    INFO("T = " << steps);
    sampler s(g, f, energy, q, sampler_options().steps(steps).seed(2), init::translator_sample{}, constant_step{0.1},
              no_noise{});
    auto r = s.sample(torch::zeros({1, 2}), 64);
    CHECK(r.z.abs().max().item<double>() <= 1.0);
    CHECK(r.ok.all().item<bool>());
    CHECK(torch::isfinite(r.energy).all().item<bool>());
  }
}

TEST_CASE("best_of: non-finite candidates never win, -inf included", "[sampler][init][errors]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  // 16% of prior draws are broken; all 8 candidates of a chain are, with probability 4e-7.
  sampler s(g, f, minus_inf_beyond_one{}, sampler_options().seed(5), init::best_of<8, init::prior>{});
  auto r = s.sample(torch::zeros({1, 2}), 200);
  CHECK(r.ok.all().item<bool>());
  CHECK((r.z.select(1, 0) <= 1).all().item<bool>());
}

TEST_CASE("a failed chain of the mixture start stays exactly where it failed", "[sampler][init][errors]") {
  torch::manual_seed(6);
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  mixture_translator q(mixture_translator_options(2, 2).components(3));
  fails_mid_run energy;
  sampler s(g, f, energy, q, sampler_options().steps(10).momentum(0.9).seed(4), init::translator_mixture{},
            constant_step{0.05}, fixed_noise{0.01});
  auto c = torch::tensor({{0.0f, 0.0f}, {1.0f, 1.0f}});
  auto r = s.sample(c, 3);
  const auto failed = c.select(1, 0).repeat_interleave(3) > 0.5;
  CHECK(torch::equal(r.ok, ~failed));
  REQUIRE(energy.z_at_failure->defined());
  // Latents and logits are frozen: the chain's latent is the one it failed at, bit for bit.
  CHECK(torch::equal(r.z.index({failed}), energy.z_at_failure->index({failed})));
  CHECK_FALSE(torch::equal(r.z.index({~failed}), energy.z_at_failure->index({~failed})));
}

TEST_CASE("the parity starts: translator_mode and the official mixture hybrid", "[sampler][init]") {
  auto& p = problem();
  auto c = p.conditions();
  sampler mode(p.g, p.f, cross_entropy{}, p.q, sampler_options().seed(1), init::translator_mode{});
  auto r = mode.sample(c, 3);
  torch::NoGradGuard no_grad;
  CHECK(torch::allclose(r.z, p.q->mode(c).repeat_interleave(3, 0), 1e-5, 1e-6));

  const init::translator_mixture official{};
  CHECK(official.lr == 5e-3);
  CHECK(official.clip_grad == 1.0);
  CHECK_FALSE(official.sample_components);
  sampler hybrid(p.g, p.f, cross_entropy{}, p.q, sampler_options().seed(1), official);
  auto h = hybrid.sample(c, 2);
  CHECK(torch::equal(h.z[0], h.z[1]));  // one start per condition: no claim of diversity
  static_assert(needs_mixture_v<init::translator_mode> && needs_mixture_v<init::translator_mixture> &&
                !needs_mixture_v<init::translator_sample> && needs_mixture_v<init::best_of<2, init::translator_mode>>);
}
