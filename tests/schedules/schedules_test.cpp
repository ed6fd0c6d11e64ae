// Step schedules and noise policies, through the sampler.
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

TEST_CASE("every step schedule's defaults run through sample", "[sampler][schedules][defaults]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  auto run = [&](auto schedule, int64_t steps) {
    sampler s(g, f, squared_distance{}, sampler_options().steps(steps).seed(1), init::prior{}, schedule, no_noise{});
    return s.sample(torch::zeros({1, 2}), 2).steps_run;
  };
  for (int64_t steps : {1, 2, 7}) {
    INFO("T = " << steps);
    CHECK(run(constant_step{}, steps) == steps);
    CHECK(run(linear_decay{}, steps) == steps);
    CHECK(run(cosine_decay{}, steps) == steps);
    CHECK(run(exponential_decay{}, steps) == steps);
  }
  // The decays reach eta_min one step after the last update.
  CHECK(linear_decay{.eta0 = 1.0}.step_size(3, 4) == Approx(0.25));
  CHECK(cosine_decay{.eta0 = 1.0}.step_size(4, 4) == Approx(0.0).margin(1e-12));
  CHECK(cosine_decay{.eta0 = 1.0}.step_size(3, 4) > 0.0);
}
