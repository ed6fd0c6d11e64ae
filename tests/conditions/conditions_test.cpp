// The condition stage: transforms, one-hot conditions, and a translator that
// maps every condition it is given into the space it was trained in.
#include "support/toy_models.hpp"

#include <catch2/catch.hpp>

#include <memory>

using namespace tr0n;
using namespace tr0n_test;

TEST_CASE("condition transforms map features into their space and are idempotent there", "[conditions]") {
  torch::manual_seed(1);
  auto f = 3.0 * torch::randn({6, 5});
  auto p = features_to_conditions(condition_transform::softmax, f);
  CHECK(torch::allclose(p.sum(1), torch::ones({6})));
  CHECK((p >= 0).all().item<bool>());
  auto u = features_to_conditions(condition_transform::l2, f);
  CHECK(torch::allclose(u.norm(2, 1), torch::ones({6})));
  CHECK(torch::equal(features_to_conditions(condition_transform::none, f), f));
  // The canonical form keeps conditions already in the space, and normalises l2 rows.
  CHECK(torch::allclose(canonical_conditions(condition_transform::l2, 4.0 * u), u));
  CHECK(torch::equal(canonical_conditions(condition_transform::softmax, p), p));
  auto one_hot = one_hot_conditions(torch::tensor({2, 0}), 3);
  CHECK(torch::equal(one_hot, torch::tensor({{0.0f, 0.0f, 1.0f}, {1.0f, 0.0f, 0.0f}})));
  CHECK(torch::equal(canonical_conditions(condition_transform::softmax, one_hot), one_hot));
  CHECK(parse_condition_transform(to_string(condition_transform::l2)) == condition_transform::l2);
  CHECK_THROWS_WITH(parse_condition_transform("cosine"), Catch::Contains("cosine"));
}

namespace {
/// Squared distance that records the conditions the sampler hands to the energy.
struct recording_energy {
  using tr0n_tag = energy_tag;
  std::shared_ptr<torch::Tensor> seen = std::make_shared<torch::Tensor>();
  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    *seen = ctx.condition().detach();
    return (ctx.features() - ctx.condition()).pow(2).sum(-1);
  }
};
}  // namespace

TEST_CASE("an l2 translator gives the same starts for un-normalised conditions as for normalised ones",
          "[conditions][translator]") {
  // Features with norms far from 1: an l2 translator trained on their
  // directions must not care about the norm of the conditions it is given.
  torch::manual_seed(21);
  const int64_t d = 4, width = 6;
  linear_generator g{3.0 * torch::randn({width, d}), torch::zeros({width}), standard_normal(d)};
  linear_encoder f{torch::eye(width)};
  mixture_translator q(mixture_translator_options(width, d).components(3).transform(condition_transform::l2));
  train_translator(q, g, f, translator_training_options().steps(200).seed(1));
  CHECK(q->features_to_conditions(torch::full({1, width}, 2.0)).norm().item<double>() == Approx(1.0));

  auto c = features_to_conditions(condition_transform::l2, torch::randn({5, width}));
  auto scaled = 7.5 * c;
  torch::NoGradGuard no_grad;
  CHECK(torch::allclose(q->mixture(c).means, q->mixture(scaled).means, 1e-5, 1e-6));
  auto z = torch::randn({5, d});
  CHECK(torch::allclose(q->log_prob(z, c), q->log_prob(z, scaled), 1e-5, 1e-6));
  CHECK(torch::allclose(q->mode(c), q->mode(scaled), 1e-5, 1e-6));

  recording_energy energy;
  auto starts = [&](const torch::Tensor& conditions, auto init) {
    sampler s(g, f, energy, q, sampler_options().seed(3), init);
    return s.sample(conditions, 4).z;
  };
  CHECK(torch::allclose(starts(c, init::translator_sample{}), starts(scaled, init::translator_sample{}), 1e-5, 1e-6));
  CHECK(torch::allclose(starts(c, init::translator_mode{}), starts(scaled, init::translator_mode{}), 1e-5, 1e-6));
  CHECK(torch::allclose(starts(c, init::translator_mixture{}), starts(scaled, init::translator_mixture{}), 1e-5,
                        1e-6));
  // The energy keeps receiving the conditions as the caller gave them.
  starts(scaled, init::translator_sample{});
  CHECK(torch::allclose(*energy.seen, scaled.repeat_interleave(4, 0)));
}
