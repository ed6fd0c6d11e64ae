// The sampler on problems with known answers, its chunking, its random
// streams across threads, and its error reporting.
#include "support/toy_models.hpp"
#include "support/problems.hpp"

#include <ATen/record_function.h>
#include <torch/linalg.h>

#include <tr0n/runtime/threads.hpp>

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

TEST_CASE("Langevin chains from the prior match the closed-form linear-Gaussian target", "[sampler][langevin]") {
  // G(z) = A z + b, f(x) = W x, prior N(0, I), E = beta/2 ||f(G(z)) - c||^2 - log p(z):
  // the target p(z) exp(-E_data) is N(mu, P^-1) with P = I + beta M^T M, M = W A,
  // mu = P^-1 beta M^T (c - W b). Unadjusted Langevin with step eta keeps the
  // mean and has the exact stationary covariance (P - eta P^2 / 2)^-1.
  torch::manual_seed(7);
  const auto f64 = torch::kFloat64;
  const int64_t d = 3, cdim = 2;
  const double beta = 2.0;
  auto a = 0.7 * torch::randn({4, d}, f64);
  auto b = torch::randn({4}, f64);
  auto w = 0.7 * torch::randn({cdim, 4}, f64);
  linear_generator g{a, b, standard_normal(d)};
  linear_encoder f{w};
  auto c = torch::tensor({{0.8, -0.5}}, f64);

  auto m = torch::matmul(w, a);
  auto prec = torch::eye(d, f64) + beta * torch::matmul(m.t(), m);
  auto mu = torch::linalg::solve(prec, beta * torch::matmul(m.t(), (c.squeeze(0) - torch::matmul(w, b))), true);
  auto lambda = torch::linalg::eigvalsh(prec, "L");
  const double lmax = lambda.max().item<double>(), lmin = lambda.min().item<double>();
  const double eta = 0.2 / lmax;
  // 12 relaxation times of the slowest direction: the start's influence is e^-12.
  const auto steps = static_cast<int64_t>(std::ceil(12.0 / (eta * lmin)));
  auto cov_ula = torch::inverse(prec - 0.5 * eta * torch::matmul(prec, prec));

  const int64_t chains = 4000;
  sampler s(g, f, (beta / 2) * squared_distance{} + 1.0 * latent_prior{},
            sampler_options().steps(steps).seed(11), init::prior{}, constant_step{eta}, langevin_noise{});
  auto r = s.sample(c, chains);
  REQUIRE(r.ok.all().item<bool>());
  CHECK(r.steps_run == steps);
  CHECK(r.grad_evals == steps);

  auto mean = r.z.mean(0);
  auto centred = r.z - mean;
  auto cov = torch::matmul(centred.t(), centred) / (chains - 1);
  for (int64_t i = 0; i < d; ++i) {
    // Mean: SE sqrt(S_ii / N); 4.5 SE keeps a false alarm below 1e-5 per entry.
    const double se_mean = std::sqrt(cov_ula[i][i].item<double>() / chains);
    CHECK(std::abs(mean[i].item<double>() - mu[i].item<double>()) < 4.5 * se_mean);
    for (int64_t j = 0; j < d; ++j) {
      // Sample covariance entry of a Gaussian: SE sqrt((S_ii S_jj + S_ij^2) / N).
      const double sij = cov_ula[i][j].item<double>();
      const double se = std::sqrt((cov_ula[i][i].item<double>() * cov_ula[j][j].item<double>() + sij * sij) / chains);
      CHECK(std::abs(cov[i][j].item<double>() - sij) < 4.5 * se);
    }
  }
  // The test can tell a wrong covariance: the prior's own, I, is far outside.
  CHECK((torch::eye(d, f64) - cov_ula).abs().max().item<double>() > 10 * std::sqrt(2.0 / chains));
}

TEST_CASE("translator start beats the prior start at equal gradient evaluations", "[sampler][tr0n]") {
  auto& p = problem();
  const int64_t n = 40, steps = 10;
  auto opts = sampler_options().steps(steps).seed(21);
  sampler from_prior(p.g, p.f, cross_entropy{}, p.q, opts, init::prior{}, constant_step{0.05}, no_noise{});
  sampler from_translator(p.g, p.f, cross_entropy{}, p.q, opts, init::translator_sample{}, constant_step{0.05},
                          no_noise{});
  auto rp = from_prior.sample(p.conditions(), n);
  auto rt = from_translator.sample(p.conditions(), n);
  REQUIRE(rp.grad_evals == rt.grad_evals);
  REQUIRE(rp.ok.all().item<bool>());
  REQUIRE(rt.ok.all().item<bool>());
  const double ep = rp.energy.mean().item<double>(), et = rt.energy.mean().item<double>();
  INFO("prior start mean energy " << ep << ", translator start " << et);
  // The stated margin: the translator start ends at under half the prior start's energy.
  CHECK(et < 0.5 * ep);

  SECTION("every initialisation policy runs and improves on its start") {
    sampler hybrid(p.g, p.f, cross_entropy{}, p.q, opts.record_trace(true),
                   init::translator_mixture{.lr = 0.05, .sample_components = true},
                   constant_step{0.05}, no_noise{});
    auto rh = hybrid.sample(p.conditions(), n);
    REQUIRE(rh.ok.all().item<bool>());
    CHECK(rh.trace.sizes() == torch::IntArrayRef{steps + 1, p.classes * n});
    CHECK(rh.trace[-1].mean().item<double>() < rh.trace[0].mean().item<double>());
    CHECK(rh.energy.mean().item<double>() < ep);
    // Chains of one condition start from different component draws, so they differ.
    CHECK((rh.z[0] - rh.z[1]).abs().max().item<double>() > 1e-3);
    sampler means_only(p.g, p.f, cross_entropy{}, p.q, sampler_options().seed(21),
                       init::translator_mixture{.lr = 0.05, .sample_components = false}, constant_step{0.05}, no_noise{});
    auto rm = means_only.sample(p.conditions(), 2);
    CHECK(torch::equal(rm.z[0], rm.z[1]));

    sampler best(p.g, p.f, cross_entropy{}, p.q, sampler_options().seed(21), init::best_of<8>{}, constant_step{0.05},
                 no_noise{});
    sampler single(p.g, p.f, cross_entropy{}, p.q, sampler_options().seed(21), init::translator_sample{},
                   constant_step{0.05}, no_noise{});
    auto rb = best.sample(p.conditions(), n);
    auto rs = single.sample(p.conditions(), n);
    CHECK(rb.energy_evals == 8 + 1);
    CHECK(rb.energy.mean().item<double>() < rs.energy.mean().item<double>());
  }
}

TEST_CASE("sampling is reproducible with a seed and honours schedules and momentum", "[sampler]") {
  auto& p = problem();
  auto opts = sampler_options().steps(5).seed(99).momentum(0.9).grad_clip(1.0);
  sampler s(p.g, p.f, cross_entropy{}, p.q, opts, init::translator_sample{}, cosine_decay{.eta0 = 0.1, .eta_min = 0.01},
            fixed_noise{.std = 0.01});
  auto r1 = s.sample(p.conditions(), 3);
  auto r2 = s.sample(p.conditions(), 3);
  CHECK(torch::equal(r1.z, r2.z));
  CHECK(r1.z.size(0) == 15);
  CHECK(r1.x.size(0) == 15);

  CHECK(linear_decay{.eta0 = 1.0, .eta_min = 0.0}.step_size(5, 10) == Approx(0.5));
  CHECK(cosine_decay{.eta0 = 1.0, .eta_min = 0.0}.step_size(5, 10) == Approx(0.5));
  CHECK(exponential_decay{.eta0 = 1.0, .gamma = 0.5}.step_size(3, 10) == Approx(0.125));
  CHECK(langevin_noise{.beta = 2.0}.sigma(0.25) == Approx(0.5));
}

TEST_CASE("the sampler works on a box prior and clamps to it", "[sampler]") {
  torch::manual_seed(4);
  auto g = make_generator([](const torch::Tensor& z) { return z; }, truncated_normal(2, 0.5));
  identity_encoder f{2};
  mixture_translator q(mixture_translator_options(2, 2).radius(0.5));
  auto c = torch::tensor({{3.0f, -3.0f}});
  sampler s(g, f, squared_distance{}, q, sampler_options().steps(30), init::translator_sample{},
            constant_step{0.2}, no_noise{});
  auto r = s.sample(c, 4);
  CHECK(r.z.abs().max().item<double>() <= 0.5 + 1e-6);
  // Gradient descent towards (3, -3) ends on the box's corner.
  CHECK(r.z.index({torch::indexing::Slice(), 0}).min().item<double>() == Approx(0.5).margin(1e-5));
}

namespace {
// E = |z|^2 - log(1 - z_0): finite for z_0 < 1, NaN beyond.
struct barrier {
  using tr0n_tag = energy_tag;
  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    const auto& z = ctx.z();
    return z.pow(2).sum(-1) - torch::log(1 - z.select(1, 0));
  }
};

}  // namespace

TEST_CASE("non-finite energies are reported per sample, never returned as good", "[sampler][errors]") {
  // E = |z|^2 - log(1 - z_0): finite for z_0 < 1, NaN beyond; the barrier pushes
  // finite chains away from it, so exactly the chains that start beyond it fail.
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  const int64_t n = 500;
  sampler starts(g, f, barrier{}, sampler_options().steps(0).seed(8));
  auto z0 = starts.sample(torch::zeros({1, 2}), n).z;
  sampler s(g, f, barrier{}, sampler_options().steps(20).seed(8).record_trace(true), init::prior{},
            constant_step{0.02}, no_noise{});
  auto r = s.sample(torch::zeros({1, 2}), n);
  auto expected_ok = z0.select(1, 0) < 1;
  CHECK(torch::equal(r.ok, expected_ok));
  const auto bad = expected_ok.logical_not().sum().item<int64_t>();
  CHECK(bad > 20);  // about 16% of 500 start beyond the barrier
  CHECK(torch::isfinite(r.energy.index({r.ok})).all().item<bool>());
  CHECK(torch::isfinite(r.z).all().item<bool>());  // failed chains are frozen, not blown up
}

namespace {
/// An encoder that, from its `from`-th call on, returns `value` for the chosen rows: a fault mid-run.
struct faulty_encoder {
  using tr0n_tag = encoder_tag;
  int64_t dim;
  std::vector<int64_t> rows;
  int64_t from;
  double value;
  std::shared_ptr<int64_t> calls = std::make_shared<int64_t>(0);
  torch::Tensor forward(const torch::Tensor& x) {
    if ((*calls)++ < from) return x;
    auto mask = torch::zeros({x.size(0), 1}, torch::kBool);
    for (auto r : rows) mask[r] = true;
    return torch::where(mask, torch::full_like(x, value), x);
  }
  int64_t condition_dim() const { return dim; }
};

}  // namespace

TEST_CASE("a NaN or inf that appears mid-run, in the generator or the encoder, fails exactly its samples",
          "[sampler][errors][faults]") {
  const std::vector<int64_t> rows{1, 4};
  auto expected = torch::ones({8}, torch::kBool);
  for (auto r : rows) expected[r] = false;
  auto check = [&](const sample_result& r) {
    CHECK(torch::equal(r.ok, expected));
    CHECK(torch::isfinite(r.energy.index({r.ok})).all().item<bool>());
    CHECK(torch::isfinite(r.z).all().item<bool>());  // failed chains are frozen, not blown up
  };
  // The generator: NaN for chains 1 and 4 from its 6th call (step 5 of 20) on.
  auto calls = std::make_shared<int64_t>(0);
  auto g = make_generator(
      [calls, rows](const torch::Tensor& z) {
        if ((*calls)++ < 5) return z;
        auto mask = torch::zeros({z.size(0), 1}, torch::kBool);
        for (auto r : rows) mask[r] = true;
        return torch::where(mask, torch::full_like(z, NAN), z);
      },
      standard_normal(2));
  sampler s(g, identity_encoder{2}, squared_distance{}, sampler_options().steps(20).seed(2), init::prior{},
            constant_step{0.05}, fixed_noise{0.01});
  SECTION("generator NaN") { check(s.sample(torch::zeros({8, 2}), 1)); }
  auto plain = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  SECTION("encoder +inf") {
    sampler e(plain, faulty_encoder{2, rows, 5, INFINITY}, squared_distance{}, sampler_options().steps(20).seed(2),
              init::prior{}, constant_step{0.05}, fixed_noise{0.01});
    check(e.sample(torch::zeros({8, 2}), 1));
  }
  SECTION("encoder NaN on the last step") {
    sampler e(plain, faulty_encoder{2, rows, 20, NAN}, squared_distance{}, sampler_options().steps(20).seed(2),
              init::prior{}, constant_step{0.05}, fixed_noise{0.01});
    check(e.sample(torch::zeros({8, 2}), 1));
  }
}

TEST_CASE("bad input throws at the call, naming the argument", "[sampler][errors]") {
  auto& p = problem();
  sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(2));
  auto good = p.conditions();

  CHECK_THROWS_WITH(s.sample(torch::zeros({2, 3}), 1),
                    Catch::Contains("conditions") && Catch::Contains("width 5") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(s.sample(good, 0), Catch::Contains("n:") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(s.sample(good, -3), Catch::Contains("n:") && Catch::Contains("got -3"));
  auto nan_conditions = good.clone();
  nan_conditions[1][2] = NAN;
  CHECK_THROWS_WITH(s.sample(nan_conditions, 1), Catch::Contains("conditions") && Catch::Contains("finite"));
  // cross_entropy: float rows must be distributions; logits or scores are refused, naming the row.
  auto logits = good.clone();
  logits[1] = torch::tensor({2.0, -1.0, 0.5, 0.0, 0.0});
  CHECK_THROWS_WITH(s.sample(logits, 1), Catch::Contains("sample: conditions: cross_entropy expects each row to be a "
                                                         "distribution") &&
                                             Catch::Contains("row 1 has its lowest entry -1"));
  auto unnormalised = good * 2;
  CHECK_THROWS_WITH(s.sample(unnormalised, 1), Catch::Contains("row 0") && Catch::Contains("sums to 2"));
  auto soft = torch::softmax(torch::randn({3, 5}), -1);  // soft targets pass
  CHECK_NOTHROW(s.sample(soft, 1));
  sampler summed(p.g, p.f, 1.0 * cross_entropy{} + 0.1 * latent_prior{}, p.q, sampler_options().steps(1));
  CHECK_THROWS_WITH(summed.sample(logits, 1), Catch::Contains("row 1"));  // sums check their terms
  CHECK_THROWS_WITH(s.sample(good.to(torch::kMeta), 1),
                    Catch::Contains("conditions") && Catch::Contains("meta") && Catch::Contains("same device"));
  CHECK_THROWS_WITH((sampler(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(-1))),
                    Catch::Contains("steps") && Catch::Contains("got -1"));
  sampler zero_step(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(3), init::prior{}, constant_step{0.0});
  CHECK_THROWS_WITH(zero_step.sample(good, 1), Catch::Contains("step size") && Catch::Contains("eta = 0"));
  sampler negative_step(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(3), init::prior{},
                        linear_decay{.eta0 = 0.1, .eta_min = -0.1});
  CHECK_THROWS_WITH(negative_step.sample(good, 1), Catch::Contains("step size") && Catch::Contains("step 2 of 3"));
  mixture_translator wrong_latent(mixture_translator_options(p.classes, p.d + 1));
  CHECK_THROWS_WITH((sampler(p.g, p.f, cross_entropy{}, wrong_latent)),
                    Catch::Contains("latent_dim 9") && Catch::Contains("prior dim 8"));
  mixture_translator wrong_condition(mixture_translator_options(p.classes + 1, p.d));
  CHECK_THROWS_WITH((sampler(p.g, p.f, cross_entropy{}, wrong_condition)),
                    Catch::Contains("condition_dim 6") && Catch::Contains("condition_dim 5"));
  CHECK_THROWS_WITH(s.evaluate(torch::zeros({4, 3}), good.repeat({1, 1}).narrow(0, 0, 4)),
                    Catch::Contains("z") && Catch::Contains("width 8"));
  CHECK_THROWS_WITH(sampler_options().momentum(1.0).validate(), Catch::Contains("momentum"));
  CHECK_THROWS_WITH(train_translator(wrong_latent, p.g, p.f, translator_training_options().steps(1)),
                    Catch::Contains("latent_dim 9"));
  CHECK_THROWS_WITH(train_translator(p.q, p.g, p.f, translator_training_options().steps(0)),
                    Catch::Contains("steps") && Catch::Contains("got 0"));
}

TEST_CASE("two samplers in two threads give what they give one after the other", "[sampler][random][threads]") {
  auto& p = problem();
  auto run = [&](uint64_t seed) {
    sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(20).seed(seed), init::translator_sample{},
              constant_step{0.05}, fixed_noise{0.05});
    return s.sample(p.conditions(), 16).z;
  };
  auto first = run(1), second = run(2);
  torch::Tensor a, b;
  std::thread t1([&] { a = run(1); });
  std::thread t2([&] { b = run(2); });
  t1.join();
  t2.join();
  CHECK(torch::equal(a, first));
  CHECK(torch::equal(b, second));
  CHECK_FALSE(torch::equal(first, second));
}

TEST_CASE("a sampler and a training run in two threads give what they give one after the other",
          "[sampler][translator][random][threads]") {
  auto& p = problem();
  auto sample = [&] {
    sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(20).seed(3), init::translator_sample{},
              constant_step{0.05}, fixed_noise{0.05});
    return s.sample(p.conditions(), 16).z;
  };
  auto train = [&](mixture_translator& q) {
    return train_translator(q, p.g, p.f, translator_training_options().steps(30).batch_size(32).seed(4)).losses;
  };
  auto fresh = [&] {
    torch::manual_seed(11);  // the same initial weights (seeded here, before any thread starts)
    return mixture_translator(mixture_translator_options(p.classes, p.d));
  };
  auto q1 = fresh(), q2 = fresh();
  auto z_alone = sample();
  auto losses_alone = train(q1);
  torch::Tensor z, losses;
  std::thread a([&] { z = sample(); });
  std::thread b([&] { losses = train(q2); });
  a.join();
  b.join();
  CHECK(torch::equal(z, z_alone));
  CHECK(torch::equal(losses, losses_alone));
  auto p1 = q1->named_parameters(), p2 = q2->named_parameters();
  for (const auto& item : p1) CHECK(torch::equal(item.value(), p2[item.key()]));
}

TEST_CASE("check_every: the same ok flags and the same good chains at every interval", "[sampler][errors][check_every]") {
  // fails_mid_run turns NaN at its 7th call (step 6 of 20) for the chains whose condition has c_0 > 0.5.
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  auto c = torch::tensor({{0.0f, 0.0f}, {1.0f, 1.0f}, {0.2f, 0.1f}});
  const auto failed = c.select(1, 0).repeat_interleave(4) > 0.5;
  auto run = [&](int64_t k, std::shared_ptr<torch::Tensor>& z_at_failure) {
    fails_mid_run energy{.fail_at = 7};
    z_at_failure = energy.z_at_failure;
    sampler s(g, f, energy, sampler_options().steps(20).momentum(0.5).check_every(k).seed(3), init::prior{},
              constant_step{0.05}, fixed_noise{0.01});
    return s.sample(c, 4);
  };
  std::shared_ptr<torch::Tensor> at_failure, unused;
  const auto every = run(1, at_failure);
  CHECK(torch::equal(every.ok, ~failed));
  // Checked every step, a failed chain stays where it failed, bit for bit.
  CHECK(torch::equal(every.z.index({failed}), at_failure->index({failed})));
  for (int64_t k : {3, 10, 20, 100}) {
    INFO("check_every " << k);
    const auto r = run(k, unused);
    CHECK(torch::equal(r.ok, every.ok));
    CHECK(torch::equal(r.z.index({~failed}), every.z.index({~failed})));  // good chains: untouched by the checks
    CHECK(torch::isfinite(r.z).all().item<bool>());                        // failed ones: frozen at a finite latent
    CHECK(r.steps_run == 20);
  }
  CHECK_THROWS_WITH(sampler_options().check_every(0).validate(), Catch::Contains("check_every"));
}

namespace {
// E = -3e37 z_0 for chains with c_0 > 0.5, |z|^2 for the others: finite energies and gradients (and
// finite sums of 8 energies), but at eta = 100 the step overflows to +inf, and the clamp would put the chain on the box's edge, finite.
struct steep {
  using tr0n_tag = energy_tag;
  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    const auto& z = ctx.z();
    return torch::where(ctx.condition().select(1, 0) > 0.5, z.select(1, 0) * -3e37, z.pow(2).sum(-1));
  }
};

}  // namespace

TEST_CASE("check_every: an infinite step that the box clamp would hide still fails its chain", "[sampler][errors][box]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, uniform(2, -1, 1));
  identity_encoder f{2};
  auto c = torch::tensor({{0.0f, 0.0f}, {1.0f, 1.0f}});
  const auto failed = c.select(1, 0).repeat_interleave(3) > 0.5;
  for (int64_t k : {1, 10}) {
    INFO("check_every " << k);
    sampler s(g, f, steep{}, sampler_options().steps(8).check_every(k).seed(1), init::prior{}, constant_step{100.0},
              no_noise{});
    const auto r = s.sample(c, 3);
    CHECK(torch::equal(r.ok, ~failed));
    CHECK((r.z.abs() <= 1).all().item<bool>());
  }
}

TEST_CASE("max_batch: chunked runs give what one batch gives, and options are checked", "[sampler][max_batch]") {
  auto& p = problem();
  const auto c = p.conditions();  // 5 conditions x 60 samples = 300 chains, 5 blocks of 64 (the last of 44)
  auto run = [&](auto init, int64_t max_batch) {
    sampler s(p.g, p.f, cross_entropy{}, p.q,
              sampler_options().steps(12).momentum(0.5).grad_clip(5).max_batch(max_batch).seed(9), init,
              constant_step{0.05}, fixed_noise{0.02});
    return s.sample(c, 60);
  };
  auto same = [](const sample_result& a, const sample_result& b) {
    CHECK(torch::allclose(a.z, b.z, 1e-5, 1e-5));
    CHECK(torch::allclose(a.x, b.x, 1e-5, 1e-5));
    CHECK(torch::allclose(a.energy, b.energy, 1e-5, 1e-5));
    CHECK(torch::equal(a.ok, b.ok));
    CHECK(a.energy_evals == b.energy_evals);
    CHECK(a.grad_evals == b.grad_evals);
  };
  SECTION("translator start") {
    const auto whole = run(init::translator_sample{}, 0);
    for (int64_t m : {64, 100, 128, 256, 1000}) {
      INFO("max_batch " << m);
      same(run(init::translator_sample{}, m), whole);
    }
  }
  SECTION("chunks smaller than a stream block draw what the block draws") {
    // Chunks of 1, 7 and 50 chains cut blocks of 64 (and the last, of 44) into parts.
    const auto whole = run(init::translator_sample{}, 0);
    for (int64_t m : {1, 7, 50}) {
      INFO("max_batch " << m);
      same(run(init::translator_sample{}, m), whole);
    }
    same(run(init::translator_mixture{}, 7), run(init::translator_mixture{}, 0));
  }
  SECTION("prior starts in parts of a block are the block's draws, bit for bit") {
    // No arithmetic on the draws: the claim is bitwise (the same generator fills the same shape).
    for (int64_t m : {0, 1, 5, 64}) {
      INFO("max_batch " << m);
      sampler s(p.g, p.f, cross_entropy{}, sampler_options().seed(3).max_batch(m), init::prior{});
      const auto r = s.sample(c, 30);  // 150 chains: blocks of 64, 64, 22
      sampler w(p.g, p.f, cross_entropy{}, sampler_options().seed(3), init::prior{});
      CHECK(torch::equal(r.z, w.sample(c, 30).z));
    }
  }
  SECTION("best of 3 from the prior") {
    const auto whole = run(init::best_of<3, init::prior>{}, 0);
    same(run(init::best_of<3, init::prior>{}, 64), whole);
  }
  SECTION("the mixture hybrid") {
    const auto whole = run(init::translator_mixture{}, 0);
    same(run(init::translator_mixture{}, 128), whole);
  }
  SECTION("a run of one block draws what LibTorch draws from the seed") {
    sampler s(p.g, p.f, cross_entropy{}, sampler_options().seed(21), init::prior{});
    const auto r = s.sample(c, 4);  // 20 chains
    CHECK(torch::equal(r.z, torch::randn({20, p.d}, make_generator(21), torch::kFloat32)));
  }
  SECTION("bad options") {
    CHECK_THROWS_WITH(sampler_options().max_batch(-1).validate(), Catch::Contains("max_batch"));
    CHECK_NOTHROW(sampler_options().max_batch(10).validate());  // below a block: parts of blocks
    CHECK_NOTHROW(sampler_options().max_batch(10).stream_block(8).validate());
    CHECK_THROWS_WITH(sampler_options().stream_block(0).validate(), Catch::Contains("stream_block"));
  }
}

TEST_CASE("on the test device: training, every start, chunking and the checks", "[sampler][device]") {
  // TR0N_TEST_DEVICE=cuda runs this on a GPU (scripts/gpu-check.sh); cpu by default.
  const auto device = test_device();
  INFO("device " << device);
  torch::manual_seed(3);
  mlp_generator g(8, 32, 16);
  linear_classifier f(16, 5, 3.0);
  g->to(device);
  f->to(device);
  mixture_translator q(mixture_translator_options(5, 8).components(4).transform(condition_transform::softmax));
  q->to(device);
  const auto report = train_translator(q, g, f, translator_training_options().steps(300).batch_size(128).seed(5));
  CHECK(report.losses.index({torch::indexing::Slice(-20)}).mean().item<double>() <
        report.losses.index({torch::indexing::Slice(0, 20)}).mean().item<double>());
  const auto c = one_hot_conditions(torch::arange(5), 5).to(device);
  auto run = [&](auto init, int64_t max_batch, int64_t check_every) {
    sampler s(g, f, cross_entropy{}, q,
              sampler_options().steps(10).momentum(0.5).grad_clip(5).max_batch(max_batch).check_every(check_every).seed(2),
              init, constant_step{0.05}, fixed_noise{0.01});
    return s.sample(c, 30);  // 150 chains: 3 stream blocks
  };
  for (int64_t check_every : {1, 10}) {
    const auto whole = run(init::translator_sample{}, 0, check_every);
    CHECK(whole.z.device() == device);
    CHECK(whole.ok.all().item<bool>());
    const auto chunked = run(init::translator_sample{}, 64, check_every);
    CHECK(torch::allclose(chunked.z, whole.z, 1e-5, 1e-5));
    CHECK(torch::allclose(chunked.energy, whole.energy, 1e-5, 1e-5));
  }
  CHECK(run(init::translator_mixture{}, 64, 10).ok.all().item<bool>());
  CHECK(run(init::best_of<2>{}, 64, 10).ok.all().item<bool>());
  // The translator start beats the prior start at equal steps.
  sampler prior_start(g, f, cross_entropy{}, sampler_options().steps(10).seed(2), init::prior{}, constant_step{0.05},
                      fixed_noise{0.01});
  CHECK(run(init::translator_sample{}, 0, 10).energy.mean().item<double>() <
        prior_start.sample(c, 30).energy.mean().item<double>());
  // The preprocessing stage keeps its statistics on the images' device.
  preprocessed_encoder pre(identity_encoder{3}, preprocess_options().mean({0.5, 0.5, 0.5}).std({0.25, 0.25, 0.25}));
  const auto y = pre.preprocess(torch::full({2, 3, 2, 2}, 0.75, torch::TensorOptions().device(device)));
  CHECK(y.device() == device);
  CHECK(torch::allclose(y.cpu(), torch::ones({2, 3, 2, 2})));
}

TEST_CASE("sample_chunks hands over each chunk's results and keeps no x", "[sampler][max_batch]") {
  auto& p = problem();
  const auto c = p.conditions();
  sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(6).max_batch(128).seed(4), init::translator_sample{},
            constant_step{0.05}, fixed_noise{0.02});
  const auto whole = s.sample(c, 60);  // 300 chains: chunks of 128, 128 and 44
  std::vector<int64_t> firsts;
  auto x = torch::empty_like(whole.x);
  auto ok = torch::zeros_like(whole.ok);
  const auto r = s.sample_chunks(c, 60, [&](const sample_chunk& k) {
    firsts.push_back(k.first);
    CHECK(k.x.size(0) == k.z.size(0));
    x.narrow(0, k.first, k.x.size(0)).copy_(k.x);
    ok.narrow(0, k.first, k.ok.size(0)).copy_(k.ok);
  });
  CHECK(firsts == std::vector<int64_t>{0, 128, 256});
  CHECK_FALSE(r.x.defined());
  CHECK(torch::equal(r.z, whole.z));
  CHECK(torch::equal(r.energy, whole.energy));
  CHECK(torch::equal(r.ok, whole.ok));
  CHECK(torch::equal(ok, whole.ok));
  CHECK(torch::equal(x, whole.x));
}

namespace {
/// Counts the host reads (`item()`, truth values of tensors) the ops of this thread make, by name.
struct host_read_counter {
  static int64_t& count() {
    thread_local int64_t n = 0;
    return n;
  }
  at::CallbackHandle handle;
  host_read_counter() {
    count() = 0;
    handle = at::addThreadLocalCallback(at::RecordFunctionCallback(
        [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          const std::string_view name = fn.name();
          if (name == "aten::_local_scalar_dense" || name == "aten::is_nonzero" || name == "aten::equal") ++count();
          return nullptr;
        }));
  }
  ~host_read_counter() { at::removeCallback(handle); }
};

}  // namespace

/// Host reads between the start of a run's step loop and its end.
struct loop_reads {
  std::shared_ptr<int64_t> reads = std::make_shared<int64_t>(-1);
  void on_begin(const run_info&) { host_read_counter::count() = 0; }
  void on_end(const run_info&) { *reads = host_read_counter::count(); }
};

TEST_CASE("the step loop reads nothing back on the host unless a callback does", "[sampler][sync]") {
  auto& p = problem();
  const auto c = p.conditions();
  for (int64_t max_batch : {0, 64}) {
    INFO("max_batch " << max_batch);
    sampler s(p.g, p.f, cross_entropy{}, p.q,
              sampler_options().steps(12).momentum(0.5).grad_clip(5).max_batch(max_batch).seed(1),
              init::translator_sample{}, constant_step{0.05}, fixed_noise{0.01});
    host_read_counter counting;
    {
      loop_reads loop;
      s.sample(c, 30, loop);  // 150 chains: one chunk, or three
      CHECK(*loop.reads == 0);
    }
    {
      // Outside the loop: the conditions' value checks run once per tensor (LibTorch's multinomial
      // reads its probabilities back when it draws once per row; that is the start's, not the loop's).
      host_read_counter::count() = 0;
      s.sample(c, 30);
      const auto again = host_read_counter::count();
      host_read_counter::count() = 0;
      s.sample(c.clone(), 30);
      CHECK(host_read_counter::count() > again);
    }
    // A callback that reads values does read them: one per step.
    loop_reads loop;
    value_trace trace;
    s.sample(c, 30, trace, loop);
    CHECK(*loop.reads == 12);
  }
}

TEST_CASE("step_scale moves each latent part at its own rate, and per-coordinate bounds hold", "[sampler][parts]") {
  // G(z) = z A^T + b on a latent of two parts: 3 coordinates truncated to [-0.5, 0.5], 2 free.
  torch::manual_seed(4);
  const joint_prior<truncated_normal, standard_normal> prior(truncated_normal(3, 0.5), standard_normal(2));
  struct joint_generator {
    using tr0n_tag = tr0n::generator_tag;
    torch::Tensor a;
    joint_prior<truncated_normal, standard_normal> p;
    torch::Tensor forward(const torch::Tensor& z) { return torch::matmul(z, a.t()); }
    const joint_prior<truncated_normal, standard_normal>& prior() const { return p; }
  };
  joint_generator g{torch::randn({4, 5}), prior};
  linear_encoder f{torch::eye(4)};
  const auto target = torch::full({1, 4}, 3.0);
  auto run = [&](torch::Tensor scale, int64_t steps, double eta) {
    sampler s(g, f, squared_distance{}, sampler_options().steps(steps).step_scale(scale).seed(8), init::prior{},
              constant_step{eta}, fixed_noise{0.0});
    return s.sample(target, 16).z;
  };
  const auto start = run({}, 0, 0.01);
  SECTION("one step: the second part moves by its multiplier times the unscaled move") {
    const auto plain = run({}, 1, 0.001) - start;
    const auto scaled = run(part_scales({3, 2}, {1.0, 0.25}), 1, 0.001) - start;
    CHECK(plain.abs().sum().item<double>() > 0);
    CHECK(torch::allclose(scaled.narrow(1, 0, 3), plain.narrow(1, 0, 3), 1e-5, 1e-7));
    CHECK(torch::allclose(scaled.narrow(1, 3, 2), 0.25 * plain.narrow(1, 3, 2), 1e-4, 1e-7));
  }
  SECTION("long steps: the truncated part stays in its box, the free part leaves it") {
    const auto z = run({}, 50, 0.2);
    CHECK(z.narrow(1, 0, 3).abs().max().item<double>() <= 0.5);
    CHECK(z.narrow(1, 3, 2).abs().max().item<double>() > 0.5);
  }
  SECTION("a multiplier per coordinate, finite and positive") {
    CHECK_THROWS_WITH(run(torch::ones({4}), 1, 0.1), Catch::Contains("step_scale") && Catch::Contains("5"));
    CHECK_THROWS_WITH(sampler_options().step_scale(torch::tensor({1.0, 0.0})).validate(),
                      Catch::Contains("step_scale"));
    CHECK_THROWS_WITH(part_scales({3, 2}, {1.0}), Catch::Contains("one multiplier per part"));
  }
}
