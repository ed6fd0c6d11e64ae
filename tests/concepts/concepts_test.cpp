// Compile-only checks that every shipped component models its concept and
// that wrong types are rejected.
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
                                  sizeof(constant_step) + sizeof(int64_t) + sizeof(tr0n::detail::seen_tensor) +
                                  sizeof(tr0n::detail::step_tensors),
              "empty energy, translator, init and noise policies must cost nothing");

}  // namespace
