// Priors: draws within their support, log densities.
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

TEST_CASE("codebook_prior draws rows of its table, uniformly", "[priors][codebook]") {
  const auto table = torch::arange(12, torch::kFloat32).view({4, 3});
  codebook_prior p(table);
  CHECK(p.dim() == 3);
  CHECK(p.rows() == 4);
  generator_scope scope(make_generator(5), 5);
  const int64_t n = 4000;
  const auto z = p.sample(n, torch::kFloat64);
  REQUIRE(z.sizes() == torch::IntArrayRef{n, 3});
  CHECK(z.scalar_type() == torch::kFloat64);
  // Every draw is a row: the row index is its first entry / 3, and the rest follow.
  const auto index = (z.select(1, 0) / 3).round().to(torch::kLong);
  CHECK(torch::equal(z, table.index_select(0, index).to(torch::kFloat64)));
  // Each row's frequency 1/4; SE sqrt(0.25 * 0.75 / 4000) = 0.0068, 5 SE.
  for (int64_t k = 0; k < 4; ++k) CHECK(index.eq(k).to(torch::kFloat64).mean().item<double>() == Approx(0.25).margin(0.035));
  SECTION("a table that is not [K, d] floating, or not finite, is refused") {
    CHECK_THROWS_WITH(codebook_prior(torch::zeros({4})), Catch::Contains("codebook_prior") && Catch::Contains("[K, d]"));
    CHECK_THROWS_WITH(codebook_prior(torch::zeros({2, 3}, torch::kLong)), Catch::Contains("floating"));
    CHECK_THROWS_WITH(codebook_prior(torch::full({2, 2}, NAN)), Catch::Contains("codebook_prior"));
  }
}

TEST_CASE("joint_prior concatenates its parts and composes their density and boxes", "[priors][joint]") {
  const auto table = torch::randn({10, 2});
  joint_prior p(truncated_normal(3, 0.5), codebook_prior(table), standard_normal(1));
  static_assert(Prior<decltype(p)> && PartitionedPrior<decltype(p)> && CoordinateBoxedPrior<decltype(p)>);
  static_assert(!PriorWithDensity<decltype(p)>, "a codebook part has no density");
  CHECK(p.dim() == 6);
  CHECK(latent_parts(p) == std::vector<int64_t>{3, 2, 1});
  CHECK(latent_parts(standard_normal(4)) == std::vector<int64_t>{4});
  generator_scope scope(make_generator(6), 6);
  const auto z = p.sample(500, torch::kFloat32);
  REQUIRE(z.sizes() == torch::IntArrayRef{500, 6});
  CHECK(z.narrow(1, 0, 3).abs().max().item<double>() <= 0.5);
  // The codebook part: each row is a row of the table.
  const auto y = z.narrow(1, 3, 2);
  CHECK(y.unsqueeze(1).eq(table.unsqueeze(0)).all(-1).any(1).all().item<bool>());
  CHECK(z.narrow(1, 5, 1).abs().max().item<double>() > 0.5);  // the free normal part (P(all 500 below 0.5) ~ 0)
  const auto b = p.bounds();
  CHECK(torch::equal(b.lo.narrow(0, 0, 3), torch::full({3}, -0.5, torch::kFloat64)));
  CHECK(torch::isinf(b.hi.narrow(0, 3, 3)).all().item<bool>());
  SECTION("densities add") {
    joint_prior q(truncated_normal(2, 1.0), standard_normal(3));
    static_assert(PriorWithDensity<decltype(q)>);
    const auto x = torch::rand({4, 5}, torch::kFloat64) - 0.5;
    const auto expected = truncated_normal(2, 1.0).log_prob(x.narrow(1, 0, 2)) + standard_normal(3).log_prob(x.narrow(1, 2, 3));
    CHECK(torch::allclose(q.log_prob(x), expected));
  }
}
