// Energies compute what they document.
#include "support/toy_models.hpp"

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

TEST_CASE("score: minus a head's score of f(G(z)), on features or unit features, in sums with the other terms",
          "[energies][score]") {
  linear_encoder f{torch::eye(3, torch::kFloat64)};
  standard_normal p(3);
  auto z = torch::tensor({{1.0, 2.0, 2.0}, {0.0, 0.0, 1.0}}, torch::kFloat64);
  auto c = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 0.0, 2.0}}, torch::kFloat64);
  energy_context<standard_normal, linear_encoder> ctx(z, z, c, p, f);
  const auto w = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  auto head = [w](const torch::Tensor& x) { return torch::matmul(x, w).unsqueeze(1); };  // [B, 1]
  static_assert(Energy<score<decltype(head)>>);
  const auto raw = score{head}(ctx), unit = score{head, true}(ctx);
  CHECK(raw[0].item<double>() == Approx(-(1.0 - 4.0 + 1.0)));
  CHECK(unit[0].item<double>() == Approx(-(1.0 - 4.0 + 1.0) / 3.0));
  CHECK(raw[1].item<double>() == Approx(-0.5));
  const auto total = (1.0 * neg_cosine{} + 0.1 * score{head})(ctx);
  CHECK(total[0].item<double>() == Approx(-1.0 / 3.0 + 0.1 * 2.0));
  auto two_scores = [](const torch::Tensor& x) { return x.narrow(1, 0, 2); };
  CHECK_THROWS_WITH(score{two_scores}(ctx), Catch::Contains("one score a sample"));
}
