// Zero-shot training of translators on problems with a closed-form posterior,
// its checks, and checkpoints (killed and resumed runs, refused files).
#include "support/toy_models.hpp"

#include <torch/linalg.h>
#include <torch/serialize.h>

#include <map>
#include <optional>

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
/// Prior N(0, I), G(z) = A z + b, f(x) = W x with M = W A = U diag(s) (U
/// orthogonal), and c = f(G(z)) + N(0, s_n^2 I) through the condition noise.
/// Then z | c ~ N(S M^T (c - W b) / s_n^2, S) with S = diag(1 / (1 + s_i^2 / s_n^2)):
/// diagonal, so the translator's shared diagonal std can represent it exactly.
struct linear_gaussian_problem {
  static constexpr int64_t d = 3;
  static constexpr double noise = 0.5;
  torch::Tensor s = torch::tensor({1.0, 2.0, 0.5});
  torch::Tensor u;
  linear_generator g;
  linear_encoder f;

  linear_gaussian_problem()
      : u((torch::manual_seed(12), std::get<0>(torch::linalg::qr(torch::randn({d, d}))))),
        g{torch::diag(s), torch::randn({d}), standard_normal(d)},
        f{u} {}

  torch::Tensor posterior_std() const { return (1.0 / (1.0 + s.pow(2) / (noise * noise))).sqrt(); }
};

}  // namespace

TEST_CASE("a K = 1 translator trained zero-shot recovers the linear-Gaussian posterior", "[translator][training]") {
  linear_gaussian_problem problem;
  const auto d = problem.d;
  const double noise = problem.noise;
  auto& s = problem.s;
  auto& u = problem.u;
  auto& g = problem.g;
  auto& f = problem.f;
  mixture_translator q(mixture_translator_options(d, d));
  auto report = train_translator(q, g, f,
                                 translator_training_options()
                                     .steps(3000)
                                     .batch_size(512)
                                     .lr(1e-2)
                                     .lr_min(1e-5)
                                     .condition_noise(noise)
                                     .seed(2));
  REQUIRE(report.steps_done == 3000);

  auto post_var = 1.0 / (1.0 + s.pow(2) / (noise * noise));
  auto learned_std = q->log_std.exp().detach();
  INFO("learned std " << learned_std << " expected " << post_var.sqrt());
  // 1.5M training pairs make the NLL minimiser's sampling error negligible
  // (relative SE of a variance ~ sqrt(2 / 1.5e6) = 0.1%); the 4% bound is for
  // the optimiser, which stops at a finite step count.
  CHECK(torch::allclose(learned_std, post_var.sqrt(), /*rtol=*/0.04, /*atol=*/0));

  // The mean map, on conditions drawn as in training.
  torch::NoGradGuard no_grad;
  auto z = torch::randn({2000, d});
  auto c = f.forward(g.forward(z)) + noise * torch::randn({2000, d});
  auto m = torch::matmul(u, torch::diag(s));
  auto exact = torch::matmul(c - torch::matmul(g.b, u.t()), m) * post_var / (noise * noise);
  auto predicted = q->mixture(c).means.squeeze(1);
  auto err = ((predicted - exact).pow(2).mean(0).sqrt() / post_var.sqrt());
  INFO("RMS error of the mean in posterior stds: " << err);
  // Within a tenth of a posterior standard deviation, per coordinate.
  CHECK((err < 0.1).all().item<bool>());
}

TEST_CASE("a mixture translator captures a bimodal posterior that K = 1 cannot", "[translator][training]") {
  // G(z) = z^2 in 1-D, f the identity: c = z^2 + noise has latents +-sqrt(c).
  auto g = make_generator([](const torch::Tensor& z) { return z.pow(2); }, standard_normal(1));
  identity_encoder f{1};
  auto train = [&](int64_t k) {
    mixture_translator q(mixture_translator_options(1, 1).components(k).hidden(32));
    train_translator(q, g, f,
                     translator_training_options().steps(2500).batch_size(512).lr(3e-3).condition_noise(0.05).seed(
                         4));
    return q;
  };
  auto q1 = train(1);
  auto q2 = train(2);

  torch::manual_seed(40);
  torch::NoGradGuard no_grad;
  const int64_t n = 4000;
  auto z = torch::randn({n, 1});
  auto c = z.pow(2) + 0.05 * torch::randn({n, 1});
  const double nll1 = -q1->log_prob(z, c).mean().item<double>();
  const double nll2 = -q2->log_prob(z, c).mean().item<double>();
  INFO("held-out NLL: K=1 " << nll1 << ", K=2 " << nll2);
  // K = 1 must cover both signs with one wide Gaussian: its NLL exceeds the
  // mixture's by about log(2 sigma_K1 / sigma_K2) ~ 2 nats; demand one.
  CHECK(nll2 < nll1 - 1.0);

  auto samples = q2->sample(torch::ones({1, 1}), n).squeeze(1);
  const double positive = (samples > 0).to(torch::kFloat64).mean().item<double>();
  const double near_modes = ((samples.abs() - 1).abs() < 0.3).to(torch::kFloat64).mean().item<double>();
  INFO("fraction positive " << positive << ", near +-1 " << near_modes);
  // Binomial SE at n = 4000 is under 0.008: both modes get a real share.
  CHECK(positive > 0.3);
  CHECK(positive < 0.7);
  CHECK(near_modes > 0.9);
}

TEST_CASE("training from a synthetic set reuses pairs over shuffled epochs", "[translator][training]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  mixture_translator q(mixture_translator_options(2, 2));
  auto report = train_translator(
      q, g, f, translator_training_options().steps(600).batch_size(64).lr(1e-2).dataset_size(1000).seed(3));
  // c = z exactly: the posterior collapses, so the NLL keeps falling well below
  // the prior's entropy (2.84 nats for d = 2).
  CHECK(report.losses.narrow(0, 550, 50).mean().item<double>() < 0.0);
  CHECK(report.losses.narrow(0, 550, 50).mean().item<double>() < report.losses.narrow(0, 0, 50).mean().item<double>());
}

TEST_CASE("training with default options learns the mixture's scale", "[translator][training][defaults]") {
  // The linear-Gaussian problem above (exact posterior std 0.447, 0.243, 0.707),
  // with the default learning rate, steps and batch, and only a seed and the noise set.
  linear_gaussian_problem problem;
  const auto d = problem.d;
  const double noise = problem.noise;
  auto& g = problem.g;
  auto& f = problem.f;
  const auto exact = problem.posterior_std();

  mixture_translator q(mixture_translator_options(d, d));
  auto report = train_translator(q, g, f, translator_training_options().condition_noise(noise).seed(2));
  auto learned = q->log_std.exp().detach();
  INFO("learned std " << learned << " expected " << exact);
  // 2000 steps of 256 pairs: 0.5M pairs leave a sampling error under 0.5%;
  // the 10% bound is for Adam at the default rate, which had a fixed budget.
  CHECK(torch::allclose(learned, exact.to(torch::kFloat32), /*rtol=*/0.10, /*atol=*/0));
  CHECK(report.warnings.empty());
  CHECK(report.std_min == Approx(learned.min().item<double>()));
  CHECK(report.std_max == Approx(learned.max().item<double>()));
  CHECK(report.initial_std_min > 0.8);  // refit to the prior's unit scale before the first step
  CHECK(std::isfinite(report.nll()));

  // The official start (std 0.01, no refit, one rate): in a short run the
  // scale is still travelling at Adam's rate limit at the end, and the report says so.
  mixture_translator stuck(mixture_translator_options(d, d));
  auto stuck_report = train_translator(
      stuck, g, f,
      translator_training_options().steps(300).condition_noise(noise).fit_initial_scale(false).scale_lr_factor(1).seed(2));
  CHECK(stuck_report.std_max < 0.02);
  REQUIRE(stuck_report.warnings.size() == 1);
  CHECK_THAT(stuck_report.warnings[0], Catch::Contains("standard deviation") && Catch::Contains("raise"));
}

TEST_CASE("non-finite training losses are skipped on the device, counted, and fail past a threshold",
          "[translator][training][errors]") {
  // The generator returns NaN for latents beyond 2.5 in their first coordinate
  // (0.6% of draws): about one batch of 16 in ten has one.
  auto g = make_generator(
      [](const torch::Tensor& z) {
        return torch::where((z.select(1, 0) > 2.5).unsqueeze(1), torch::full_like(z, NAN), z);
      },
      standard_normal(2));
  identity_encoder f{2};
  auto options = translator_training_options().steps(300).batch_size(16).lr(1e-2).seed(7);
  mixture_translator q(mixture_translator_options(2, 2));
  auto report = train_translator(q, g, f, translator_training_options(options).max_skipped_fraction(0.5));
  INFO("skipped " << report.skipped_steps << " of " << report.steps_done);
  CHECK(report.skipped_steps > 5);
  CHECK(report.skipped_steps < 100);
  CHECK(report.skipped_steps == (~torch::isfinite(report.losses)).sum().item<int64_t>());
  for (const auto& p : q->parameters()) CHECK(torch::isfinite(p).all().item<bool>());
  CHECK(std::isfinite(report.nll()));
  CHECK(report.nll() < 0);  // c = z: it learned despite the faults

  mixture_translator strict(mixture_translator_options(2, 2));
  CHECK_THROWS_WITH(train_translator(strict, g, f, translator_training_options(options).max_skipped_fraction(0.01)),
                    Catch::Contains("non-finite loss") && Catch::Contains("max_skipped_fraction"));
  auto broken = make_generator([](const torch::Tensor& z) { return z * NAN; }, standard_normal(2));
  mixture_translator never(mixture_translator_options(2, 2));
  CHECK_THROWS_WITH(train_translator(never, broken, f, translator_training_options().steps(20)),
                    Catch::Contains("20 of the first 20 steps"));
}

TEST_CASE("seeded training and sampling leave LibTorch's global stream alone", "[translator][random]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  mixture_translator q(mixture_translator_options(2, 2));
  torch::manual_seed(1);
  auto expected = torch::rand({4});
  torch::manual_seed(1);
  train_translator(q, g, f, translator_training_options().steps(20).seed(5));
  sampler s(g, f, squared_distance{}, q, sampler_options().steps(3).seed(6), init::translator_sample{},
            constant_step{0.1}, fixed_noise{0.1});
  auto r1 = s.sample(torch::zeros({2, 2}), 3);
  CHECK(torch::equal(torch::rand({4}), expected));
  // And seeded runs are reproducible whatever the global stream did in between.
  torch::rand({100});
  auto r2 = s.sample(torch::zeros({2, 2}), 3);
  CHECK(torch::equal(r1.z, r2.z));
}

TEST_CASE("the official loss scale: reports stay in NLL units and training still learns", "[translator][training][parity]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  auto train = [&](double scale) {
    torch::manual_seed(3);
    mixture_translator q(mixture_translator_options(2, 2));
    return train_translator(q, g, f, translator_training_options().steps(300).loss_scale(scale).seed(4));
  };
  auto plain = train(1.0), scaled = train(1e-4);
  CHECK(scaled.losses[0].item<double>() == Approx(plain.losses[0].item<double>()));
  // c = z: the NLL falls far below the prior's entropy (2.84 nats) either way.
  CHECK(scaled.nll() < 0.0);
  CHECK_THROWS_WITH(translator_training_options().loss_scale(0).validate(), Catch::Contains("loss_scale"));
}

namespace {
/// Throws at a chosen step: a crash in the middle of a run.
struct crash_at {
  int64_t step;
  void on_step(const step_info& info) const {
    if (info.step == step) throw std::runtime_error("crash");
  }
};

}  // namespace

TEST_CASE("training killed and resumed from its checkpoint ends bitwise where the uninterrupted run does",
          "[translator][training][checkpoint][faults]") {
  auto g = make_generator([](const torch::Tensor& z) { return z.tanh(); }, standard_normal(2));
  identity_encoder f{2};
  auto dir = std::filesystem::temp_directory_path() / "tr0n_test_checkpoint";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto a = (dir / "a.ckpt").string(), b = (dir / "b.ckpt").string();
  // Fresh pairs, and a synthetic set whose epochs wrap inside a batch; both
  // with condition noise, so the random stream is part of what must resume.
  const int64_t set_size = GENERATE(0, 40);
  INFO("dataset_size " << set_size);
  auto options = translator_training_options().steps(30).batch_size(16).seed(3).condition_noise(0.1)
                     .dataset_size(set_size).checkpoint_every(10);

  torch::manual_seed(5);  // both runs start from the same weights
  mixture_translator whole(mixture_translator_options(2, 2).components(3));
  auto full = train_translator(whole, g, f, translator_training_options(options).checkpoint_path(a));

  torch::manual_seed(5);
  mixture_translator killed(mixture_translator_options(2, 2).components(3));
  CHECK_THROWS_WITH(train_translator(killed, g, f, translator_training_options(options).checkpoint_path(b),
                                     crash_at{14}),
                    "crash");
  // A new process: a translator freshly made (other initial weights), resumed.
  torch::manual_seed(99);
  mixture_translator resumed(mixture_translator_options(2, 2).components(3));
  auto rest = train_translator(resumed, g, f, translator_training_options(options).checkpoint_path(b).resume_from(b));
  CHECK(rest.steps_done == 30);
  CHECK(torch::equal(rest.losses, full.losses));
  CHECK(rest.skipped_steps == full.skipped_steps);
  auto pw = whole->named_parameters(), pr = resumed->named_parameters();
  for (const auto& item : pw) {
    INFO(item.key());
    CHECK(torch::equal(item.value(), pr[item.key()]));
  }
  CHECK(rest.std_min == full.std_min);
  CHECK(rest.warnings == full.warnings);

  // Resuming a finished run changes nothing.
  auto again = train_translator(resumed, g, f, translator_training_options(options).checkpoint_path(b).resume_from(b));
  CHECK(again.steps_done == 30);
  for (const auto& item : pw) CHECK(torch::equal(item.value(), pr[item.key()]));
}

TEST_CASE("training pairs computed in bf16 train a translator as float32 pairs do", "[translator][training][precision]") {
  const auto w = torch::tensor({{1.5, 0.3}, {-0.2, 1.2}});
  auto g = make_generator([w](const torch::Tensor& z) { return torch::tanh(torch::linear(z, w)); }, standard_normal(2));
  identity_encoder f{2};
  auto train = [&](precision compute) {
    torch::manual_seed(5);
    mixture_translator q(mixture_translator_options(2, 2).components(3));
    auto report = train_translator(q, g, f, translator_training_options().steps(150).seed(4).precision(compute));
    for (const auto& t : q->parameters()) CHECK(t.scalar_type() == torch::kFloat32);
    return report;
  };
  const auto full = train(precision::fp32), half = train(precision::bf16);
  // c = tanh(W z) is learnable: both reach a negative NLL; bfloat16 pairs (G's product rounded) move it little.
  INFO("NLL fp32 " << full.nll() << ", bf16 " << half.nll());
  CHECK(half.nll() != full.nll());
  CHECK(full.nll() < 0);
  CHECK(half.nll() < 0);
  CHECK(std::abs(half.nll() - full.nll()) < 0.2);
  CHECK(translator_training_options().precision(precision::bf16).record().back() ==
        std::pair<std::string, std::string>("precision", "bf16"));
}

TEST_CASE("a checkpoint is refused, by name, for another format, other options or another translator",
          "[translator][training][checkpoint][errors]") {
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder f{2};
  auto dir = std::filesystem::temp_directory_path() / "tr0n_test_checkpoint_refused";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = (dir / "run.ckpt").string();
  auto options = translator_training_options().steps(5).batch_size(8).seed(1).checkpoint_path(path);
  mixture_translator q(mixture_translator_options(2, 2));
  train_translator(q, g, f, options);

  mixture_translator other(mixture_translator_options(2, 2));
  auto resume = translator_training_options(options).resume_from(path);
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).batch_size(4).lr(1e-3)),
                    Catch::Contains("checkpoint " + path) && Catch::Contains("batch_size = 8 there, 4 here") &&
                        Catch::Contains("lr = 0.0030000000000000001 there, 0.001 here"));
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).seed(2)),
                    Catch::Contains("seed = 1, but this run has seed = 2"));
  mixture_translator wider(mixture_translator_options(2, 2).components(4));
  CHECK_THROWS_WITH(train_translator(wider, g, f, resume),
                    Catch::Contains("its translator does not match") && Catch::Contains("components"));
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from(path + ".none")),
                    Catch::Contains("file not found"));

  // A version 1 file (one process's, from before the number of processes was recorded) still
  // resumes; a checkpoint written by two processes is refused by one, by name.
  // The checkpoint at `path` written again to `to` with `fields` replaced (a field mapped to an undefined
  // tensor is dropped).
  auto rewrite_fields = [&](const std::string& to, const std::map<std::string, torch::Tensor>& fields) {
    torch::serialize::InputArchive in;
    in.load_from(path);
    torch::serialize::OutputArchive out;
    for (const auto& key : in.keys()) {
      if (fields.count(key)) continue;
      c10::IValue v;
      REQUIRE(in.try_read(key, v));
      out.write(key, v);
    }
    for (const auto& [key, value] : fields)
      if (value.defined()) out.write(key, value);
    out.save_to(to);
  };
  auto rewrite = [&](const std::string& to, int64_t version, std::optional<int64_t> world_size) {
    rewrite_fields(to, {{"tr0n_checkpoint_version", torch::tensor({version})},
                        {"world_size", world_size ? torch::tensor({*world_size}) : torch::Tensor()}});
  };
  const auto v1 = (dir / "v1.ckpt").string(), two = (dir / "two.ckpt").string();
  rewrite(v1, 1, std::nullopt);
  mixture_translator from_v1(mixture_translator_options(2, 2));
  const auto done = train_translator(from_v1, g, f, translator_training_options(options).resume_from(v1));
  CHECK(done.steps_done == 5);
  auto pq = q->named_parameters(), p1 = from_v1->named_parameters();
  for (const auto& item : pq) CHECK(torch::equal(item.value(), p1[item.key()]));
  rewrite(two, 2, 2);
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from(two)),
                    Catch::Contains("two.ckpt: written by a run of 2 processes, but this run has 1: resume it with 2 processes"));

  // A generator state another LibTorch wrote (2.x's CUDA state is 16 bytes) is refused naming both versions;
  // the same version with the same bytes is refused as not this device's state.
  auto with_state = [&](const std::string& to, const std::string& libtorch) {
    rewrite_fields(to, {{"rng", torch::zeros({16}, torch::kUInt8)},
                        {"libtorch_version", tr0n::detail::bytes_tensor(libtorch)}});
  };
  const auto foreign = (dir / "foreign.ckpt").string(), same = (dir / "same.ckpt").string();
  with_state(foreign, "2.5.1");
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from(foreign)),
                    Catch::Contains("foreign.ckpt: its 16-byte generator state was written by LibTorch 2.5.1") &&
                        Catch::Contains(std::string("this LibTorch (") + TORCH_VERSION + ")"));
  with_state(same, TORCH_VERSION);
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from(same)),
                    Catch::Contains("same.ckpt: field rng is not a state of this device's generator"));

  // Another format version; a translator file; a truncated checkpoint.
  torch::serialize::OutputArchive future;
  future.write("tr0n_checkpoint_version", torch::tensor({int64_t{3}}));
  future.save_to((dir / "future.ckpt").string());
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from((dir / "future.ckpt").string())),
                    Catch::Contains("format version 3, but this tr0n reads versions 1 to 2"));
  torch::save(q, (dir / "translator.pt").string());
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from((dir / "translator.pt").string())),
                    Catch::Contains("not a tr0n training checkpoint (it has no format version)"));
  auto bytes = read_bytes(path);
  write_bytes((dir / "cut.ckpt").string(), std::vector<char>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  CHECK_THROWS_WITH(train_translator(other, g, f, translator_training_options(resume).resume_from((dir / "cut.ckpt").string())),
                    Catch::Contains("cut.ckpt") && Catch::Contains("not a whole torch.save archive"));
}

TEST_CASE("training noise: the official feature noise, its adaptive form, a target cosine, and the old condition noise",
          "[training][noise]") {
  // 256 rows of raw features of norm 10 in 512 dimensions, like CLIP ViT-B/32's.
  torch::manual_seed(21);
  auto features = torch::randn({256, 512}, torch::kFloat64);
  features = 10 * features / features.norm(2, -1, true);
  const auto l2 = condition_transform::l2;
  auto mean_cosine = [&](const translator_training_options& o) {
    generator_scope scope(std::optional<uint64_t>(4), torch::kCPU);
    const auto noisy = training_conditions(o, l2, features);
    return std::make_pair(torch::cosine_similarity(noisy, features, -1), noisy);
  };
  // The official clip_noise_scale 0.2 on raw features: clip_latent + 0.2 * randn, the same draws, the same numbers.
  const auto official = translator_training_options().feature_noise(0.2);
  {
    generator_scope scope(std::optional<uint64_t>(4), torch::kCPU);
    const auto ours = training_conditions(official, condition_transform::none, features);
    generator_scope again(std::optional<uint64_t>(4), torch::kCPU);
    CHECK(torch::equal(ours, features + 0.2 * random::randn_like(features)));
  }
  // Its expected cosine, r / sqrt(r^2 + s^2 C) = 10 / sqrt(100 + 0.04 * 512) = 0.9111; the per-row cosines
  // spread by about 0.004, so the mean of 256 is within 0.001 (4 standard errors).
  const double official_cosine = 10 / std::sqrt(100 + 0.04 * 512);
  CHECK(mean_cosine(official).first.mean().item<double>() == Approx(official_cosine).margin(1e-3));
  CHECK(expected_noise_cosine(official, l2, features) == Approx(official_cosine).margin(1e-3));
  // Adaptive: the noise rescaled to each row's norm first: 1 / sqrt(1 + s^2) = 0.9806.
  const auto adaptive = translator_training_options().feature_noise(0.2).adaptive_feature_noise(true);
  CHECK(mean_cosine(adaptive).first.mean().item<double>() == Approx(1 / std::sqrt(1.04)).margin(1e-3));
  // By cosine: every row exactly at the target, of the same norm, at any width.
  for (int64_t width : {512, 5}) {
    INFO("width " << width);
    auto f = features.narrow(1, 0, width);
    const auto o = translator_training_options().noise_cosine(0.657);
    generator_scope scope(std::optional<uint64_t>(4), torch::kCPU);
    const auto noisy = training_conditions(o, l2, f);
    const auto clean = features_to_conditions(l2, f);
    CHECK(torch::allclose(torch::cosine_similarity(noisy, clean, -1), torch::full({256}, 0.657, torch::kFloat64), 0,
                          1e-9));
    CHECK(torch::allclose(noisy.norm(2, -1), torch::ones({256}, torch::kFloat64), 0, 1e-9));
    CHECK(expected_noise_cosine(o, l2, f) == Approx(0.657).margin(1e-9));
  }
  // The old form, after the l2 stage: 0.1 on 512 unit coordinates is 1 / sqrt(1 + 0.01 * 512) = 0.40.
  const auto old_form = translator_training_options().condition_noise(0.1);
  CHECK(mean_cosine(old_form).first.mean().item<double>() == Approx(1 / std::sqrt(1 + 0.01 * 512)).margin(0.01));
  CHECK(expected_noise_cosine(translator_training_options(), l2, features) == 1.0);
  // One form at a time, and adaptive only with feature noise.
  CHECK_THROWS_WITH(translator_training_options().feature_noise(0.2).noise_cosine(0.5).validate(),
                    Catch::Contains("at most one of them"));
  CHECK_THROWS_WITH(translator_training_options().adaptive_feature_noise(true).validate(),
                    Catch::Contains("adaptive_feature_noise: set, but feature_noise is 0"));
  CHECK_THROWS_WITH(translator_training_options().noise_cosine(1.0).validate(), Catch::Contains("(0, 1)"));
}

TEST_CASE("training with feature noise trains on noisy raw features through the condition stage",
          "[training][noise]") {
  linear_gaussian_problem problem;
  for (const auto& o : {translator_training_options().feature_noise(0.5),
                        translator_training_options().feature_noise(0.5).adaptive_feature_noise(true),
                        translator_training_options().noise_cosine(0.9)}) {
    mixture_translator q(mixture_translator_options(3, 3).components(1).transform(condition_transform::l2));
    const auto report = train_translator(q, problem.g, problem.f, translator_training_options(o).steps(200).seed(3));
    CHECK(std::isfinite(report.nll()));
    CHECK(report.skipped_steps == 0);
  }
}
