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
