// Compile-only checks that every shipped component models its concept and
// that wrong types are rejected, plus run-time laws of priors and energies.
#include "support/toy_models.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace tr0n;
using tr0n_test::identity_encoder;
using tr0n_test::linear_encoder;
using tr0n_test::linear_generator;

namespace {
auto plain_generator() {
  return make_generator([](const torch::Tensor& z) { return z * 2; }, standard_normal(3));
}
using plain_generator_t = decltype(plain_generator());
using plain_encoder_t = decltype(make_encoder([](const torch::Tensor& x) { return x; }, 3));

// An encoder-shaped type passed as a generator, and the reverse.
static_assert(Generator<linear_generator> && !Encoder<linear_generator>);
static_assert(Encoder<linear_encoder> && !Generator<linear_encoder>);
static_assert(Generator<plain_generator_t> && Encoder<plain_encoder_t>);
static_assert(Generator<tr0n_test::mlp_generator> && Generator<tr0n_test::mlp_generator_impl>);
static_assert(Encoder<tr0n_test::linear_classifier>);

// A type with the right members but no opt-in is not a generator.
struct unlabelled {
  torch::Tensor forward(const torch::Tensor& z) { return z; }
  const standard_normal& prior() const;
};
static_assert(!Generator<unlabelled>);
// Opting in without the members is not enough either.
struct labelled_without_prior {
  using tr0n_tag = generator_tag;
  torch::Tensor forward(const torch::Tensor& z) { return z; }
};
static_assert(!Generator<labelled_without_prior>);
// A third-party type enrolled by specialisation.
struct third_party_encoder {
  torch::Tensor forward(const torch::Tensor& x) { return x; }
  int64_t condition_dim() const { return 1; }
};
}  // namespace
template <>
inline constexpr bool tr0n::enable_encoder<third_party_encoder> = true;
namespace {
static_assert(Encoder<third_party_encoder>);

// Priors.
static_assert(PriorWithDensity<standard_normal> && !BoxedPrior<standard_normal>);
static_assert(PriorWithDensity<truncated_normal> && BoxedPrior<truncated_normal>);
static_assert(BoxedPrior<clamped_normal> && !PriorWithDensity<clamped_normal>);
static_assert(PriorWithDensity<uniform> && BoxedPrior<uniform>);
static_assert(!Prior<int>);

// Energies, and composed sums.
static_assert(Energy<cross_entropy> && Energy<neg_cosine> && Energy<squared_distance> && Energy<latent_prior>);
using composed_t = decltype(1.0 * neg_cosine{} + 0.1 * latent_prior{} + squared_distance{});
static_assert(Energy<composed_t>);
static_assert(std::is_same_v<composed_t, energy_sum<weighted<neg_cosine>, weighted<latent_prior>, squared_distance>>);
static_assert(!Energy<standard_normal> && !Energy<linear_encoder>);
// latent_prior needs a density: rejected for a clamped-normal generator's context.
using clamped_ctx = energy_context<clamped_normal, linear_encoder>;
using normal_ctx = energy_context<standard_normal, linear_encoder>;
static_assert(!EnergyFor<latent_prior, clamped_ctx> && EnergyFor<latent_prior, normal_ctx>);
// The archetype context (tr0n/detail/archetypes.hpp) and the context the sampler builds
// accept the same energies: every model, composed or augmented, against both.
static_assert(EnergyFor<cross_entropy, normal_ctx> && EnergyFor<neg_cosine, normal_ctx> &&
              EnergyFor<squared_distance, normal_ctx> && EnergyFor<composed_t, normal_ctx> &&
              EnergyFor<augmented_neg_cosine<>, normal_ctx> && Energy<augmented_neg_cosine<>>);
static_assert(Reducer<tr0n::detail::no_reducer> && !Reducer<standard_normal>);
static_assert(NoisePolicy<langevin_noise> && !NoisePolicy<constant_step> && StepSchedule<constant_step>);
static_assert(!EnergyFor<decltype(1.0 * squared_distance{} + 1.0 * latent_prior{}), clamped_ctx>);

// Translators.
static_assert(Translator<mixture_translator> && TrainableTranslator<mixture_translator>);
static_assert(MixtureTranslator<mixture_translator> && MixtureTranslator<mixture_translator_impl>);
static_assert(!Translator<linear_generator> && !Translator<linear_encoder>);

// A conditional density without mixture components (a flow, say) is a
// Translator, good for the plain translator start, but not a MixtureTranslator.
struct flow_translator {
  using tr0n_tag = translator_tag;
  torch::Tensor log_prob(const torch::Tensor& z, const torch::Tensor&) { return -0.5 * z.pow(2).sum(-1); }
  torch::Tensor sample(const torch::Tensor& c, int64_t n) { return random::randn({c.size(0) * n, 2}); }
  int64_t latent_dim() const { return 2; }
  int64_t condition_dim() const { return 2; }
};
static_assert(Translator<flow_translator> && !MixtureTranslator<flow_translator> && !TrainableTranslator<flow_translator>);
using flow_sampler = sampler<linear_generator, linear_encoder, squared_distance, flow_translator>;
static_assert(InitPolicy<init::translator_sample, flow_sampler> && std::is_same_v<flow_sampler::init_policy_type, init::translator_sample>);

// Policies.
static_assert(StepSchedule<constant_step> && StepSchedule<cosine_decay> && !StepSchedule<langevin_noise>);
static_assert(NoisePolicy<langevin_noise> && NoisePolicy<fixed_noise> && !NoisePolicy<constant_step>);

using translator_sampler = sampler<linear_generator, linear_encoder, squared_distance, mixture_translator>;
using prior_sampler = sampler<linear_generator, linear_encoder, squared_distance>;
static_assert(std::is_same_v<translator_sampler::init_policy_type, init::translator_sample>);
static_assert(std::is_same_v<prior_sampler::init_policy_type, init::prior>);
static_assert(InitPolicy<init::prior, prior_sampler> && InitPolicy<init::prior, translator_sampler>);
static_assert(InitPolicy<init::translator_sample, translator_sampler>);
static_assert(InitPolicy<init::translator_mixture, translator_sampler>);
static_assert(InitPolicy<init::best_of<4, init::translator_sample>, translator_sampler>);
static_assert(InitPolicy<init::best_of<4, init::prior>, prior_sampler>);
static_assert(InitPolicyWithAux<init::translator_mixture, mixture_state>);
static_assert(!InitPolicyWithAux<init::prior, latent_state>);

// A policy missing its `latent` hook, and one missing its name, are rejected.
struct policy_without_latent {
  static constexpr std::string_view name = "broken";
  template <class S>
  latent_state start(S&, const torch::Tensor& c) const { return {c}; }
};
struct policy_without_name {
  template <class S>
  latent_state start(S&, const torch::Tensor& c) const { return {c}; }
  torch::Tensor latent(const latent_state& s) const { return s.leaf; }
};
static_assert(!InitPolicy<policy_without_latent, prior_sampler>);
static_assert(!InitPolicy<policy_without_name, prior_sampler>);
static_assert(needs_translator_v<init::translator_sample> && !needs_translator_v<init::prior>);
static_assert(needs_translator_v<init::best_of<2>> && !needs_translator_v<init::best_of<2, init::prior>>);

// Callbacks.
static_assert(Callback<progress_bar> && Callback<value_trace> && Callback<early_stopping>);
static_assert(!Callback<int>);

// Empty policies and components add no size.
static_assert(std::is_empty_v<init::prior> && std::is_empty_v<init::translator_sample> &&
              std::is_empty_v<no_noise> && std::is_empty_v<squared_distance>);
static_assert(sizeof(init::best_of<3, init::prior>) == sizeof(int64_t), "an empty base policy must cost nothing");
using lean = sampler<linear_generator, linear_encoder, squared_distance, no_translator, init::prior,
                     constant_step, no_noise>;
using with_noise_param = sampler<linear_generator, linear_encoder, squared_distance, no_translator,
                                 init::prior, constant_step, fixed_noise>;
static_assert(sizeof(with_noise_param) == sizeof(lean) + sizeof(double),
              "an empty noise policy must cost nothing");
static_assert(sizeof(lean) == sizeof(linear_generator) + sizeof(linear_encoder) + sizeof(sampler_options) +
                                  sizeof(constant_step) + sizeof(int64_t) + sizeof(tr0n::detail::seen_tensor),
              "empty energy, translator, init and noise policies must cost nothing");
}  // namespace

TEST_CASE("priors draw within their support and report their log density", "[priors]") {
  torch::manual_seed(1);
  const int64_t n = 20000;
  SECTION("standard normal: moments and density") {
    standard_normal p(4);
    auto z = p.sample(n, torch::kFloat64);
    CHECK(z.sizes() == torch::IntArrayRef{n, 4});
    // Mean SE = 1/sqrt(n) = 0.007; 5 SE.
    CHECK(z.mean().item<double>() == Approx(0).margin(0.035));
    CHECK(z.var().item<double>() == Approx(1).margin(0.05));
    auto zero = torch::zeros({1, 4}, torch::kFloat64);
    CHECK(p.log_prob(zero).item<double>() == Approx(-2.0 * std::log(2 * M_PI)));
  }
  SECTION("truncated normal stays in the box and is normalised") {
    truncated_normal p(3, 0.5);
    auto z = p.sample(n, torch::kFloat64);
    CHECK(z.abs().max().item<double>() <= 0.5);
    // Truncated to [-0.5, 0.5] the density is nearly flat: variance close to (but
    // below) the uniform's 1/12. Exact: 1 - 2 r phi(r) / (2 Phi(r) - 1).
    const double r = 0.5, phi = std::exp(-r * r / 2) / std::sqrt(2 * M_PI), m = std::erf(r / std::sqrt(2.0));
    CHECK(z.var().item<double>() == Approx(1 - 2 * r * phi / m).margin(0.003));
    auto outside = torch::full({1, 3}, 0.6, torch::kFloat64);
    CHECK(std::isinf(p.log_prob(outside).item<double>()));
    // 1-D density integrates to 1 on the box (trapezoid rule).
    truncated_normal q(1, 1.5);
    auto grid = torch::linspace(-1.5, 1.5, 3001, torch::kFloat64).unsqueeze(1);
    CHECK(torch::trapezoid(q.log_prob(grid).exp(), grid.squeeze(1)).item<double>() == Approx(1).margin(1e-6));
  }
  SECTION("uniform and clamped normal") {
    uniform u(2, -2, 3);
    auto z = u.sample(n);
    CHECK(z.min().item<double>() >= -2);
    CHECK(z.max().item<double>() <= 3);
    CHECK(u.log_prob(torch::zeros({1, 2})).item<double>() == Approx(-2 * std::log(5.0)));
    clamped_normal cn(2, 1.0);
    CHECK(cn.sample(n).abs().max().item<double>() <= 1.0);
  }
  SECTION("bad prior arguments are rejected") {
    CHECK_THROWS_WITH(standard_normal(0), Catch::Contains("dim") && Catch::Contains("got 0"));
    CHECK_THROWS_WITH(truncated_normal(2, -1), Catch::Contains("radius"));
    CHECK_THROWS_WITH(uniform(2, 1, 1), Catch::Contains("lo < hi"));
  }
}

TEST_CASE("energies compute what they document", "[energies]") {
  linear_encoder f{torch::eye(3, torch::kFloat64)};
  standard_normal p(3);
  auto z = torch::tensor({{1.0, 2.0, 2.0}, {0.0, 0.0, 1.0}}, torch::kFloat64);
  auto c = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 0.0, 2.0}}, torch::kFloat64);
  energy_context<standard_normal, linear_encoder> ctx(z, z, c, p, f);

  auto sq = squared_distance{}(ctx);
  CHECK(sq[0].item<double>() == Approx(8.0));
  CHECK(sq[1].item<double>() == Approx(1.0));

  auto cos = neg_cosine{}(ctx);
  CHECK(cos[0].item<double>() == Approx(-1.0 / 3.0));
  CHECK(cos[1].item<double>() == Approx(-1.0));

  auto ce = cross_entropy{}(ctx);
  auto expected = -torch::log_softmax(z, -1).index({0, 0});
  CHECK(ce[0].item<double>() == Approx(expected.item<double>()));
  auto labels = torch::tensor({0, 2}, torch::kLong);
  energy_context<standard_normal, linear_encoder> label_ctx(z, z, labels, p, f);
  CHECK(cross_entropy{}(label_ctx)[0].item<double>() == Approx(expected.item<double>()));

  auto lp = latent_prior{}(ctx);
  CHECK(lp[1].item<double>() == Approx(0.5 + 1.5 * std::log(2 * M_PI)));

  auto sum = 2.0 * squared_distance{} + 0.5 * latent_prior{} + neg_cosine{};
  auto total = sum(ctx);
  CHECK(total[0].item<double>() == Approx(2 * 8.0 + 0.5 * lp[0].item<double>() - 1.0 / 3.0));
  auto reweighted = 3.0 * (2.0 * squared_distance{});
  CHECK(reweighted.weight == 6.0);
}
