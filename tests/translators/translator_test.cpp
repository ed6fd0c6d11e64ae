// The mixture translator: densities and samples, options, and its
// serialisation.
#include "support/toy_models.hpp"

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

TEST_CASE("mixture translator densities and samples agree", "[translator]") {
  torch::manual_seed(9);
  mixture_translator q(mixture_translator_options(2, 1).components(3));
  {
    torch::NoGradGuard no_grad;
    q->log_std.fill_(std::log(0.3));
  }
  auto c = torch::tensor({{0.5f, -1.0f}});
  // log_prob integrates to 1.
  torch::NoGradGuard no_grad;
  auto grid = torch::linspace(-8, 8, 8001).unsqueeze(1);
  auto density = q->log_prob(grid, c.expand({8001, 2})).exp();
  CHECK(torch::trapezoid(density, grid.squeeze(1)).item<double>() == Approx(1.0).margin(1e-3));
  // The sample mean matches the mixture mean (n = 20000: SE < 0.01).
  auto p = q->mixture(c);
  auto mean = (torch::softmax(p.logits, -1).unsqueeze(-1) * p.means).sum(1).squeeze();
  auto draws = q->sample(c, 20000);
  CHECK(draws.mean().item<double>() == Approx(mean.item<double>()).margin(0.05));
  CHECK(q->sample(torch::randn({4, 2}), 3).sizes() == torch::IntArrayRef{12, 1});
  CHECK(q->mode(c).sizes() == torch::IntArrayRef{1, 1});
}

TEST_CASE("a saved translator loads back identical; other options fail clearly", "[translator][serialize]") {
  torch::manual_seed(5);
  auto dir = std::filesystem::temp_directory_path() / "tr0n_test_serialize";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "translator.pt").string();
  mixture_translator q(mixture_translator_options(4, 3).components(2).radius(2.0));
  {
    torch::NoGradGuard no_grad;
    for (auto& t : q->parameters()) t.add_(torch::randn_like(t));
  }
  torch::save(q, path);

  mixture_translator back(mixture_translator_options(4, 3).components(2).radius(2.0));
  torch::load(back, path);
  auto c = torch::randn({5, 4});
  auto z = torch::randn({5, 3});
  CHECK(torch::equal(q->log_prob(z, c), back->log_prob(z, c)));
  CHECK(torch::equal(q->mixture(c).means, back->mixture(c).means));

  mixture_translator other_k(mixture_translator_options(4, 3).components(3).radius(2.0));
  CHECK_THROWS_WITH(torch::load(other_k, path), Catch::Contains("components = 2") && Catch::Contains("components = 3"));
  mixture_translator other_radius(mixture_translator_options(4, 3).components(2));
  CHECK_THROWS_WITH(torch::load(other_radius, path), Catch::Contains("radius"));
  mixture_translator other_width(mixture_translator_options(5, 3).components(2).radius(2.0));
  CHECK_THROWS_WITH(torch::load(other_width, path), Catch::Contains("condition_dim"));

  auto plain = torch::nn::Linear(2, 2);
  const auto plain_path = (dir / "linear.pt").string();
  torch::save(plain, plain_path);
  CHECK_THROWS_WITH(torch::load(back, plain_path), Catch::Contains("no mixture_translator options"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("translator options and conditions are validated", "[translator][errors]") {
  CHECK_THROWS_WITH(mixture_translator(mixture_translator_options(0, 3)), Catch::Contains("condition_dim"));
  CHECK_THROWS_WITH(mixture_translator(mixture_translator_options(2, 3).components(0)),
                    Catch::Contains("components") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(mixture_translator(mixture_translator_options(2, 3).radius(-1)), Catch::Contains("radius"));
  mixture_translator q(mixture_translator_options(2, 3));
  CHECK_THROWS_WITH(q->sample(torch::zeros({1, 4}), 1), Catch::Contains("conditions") && Catch::Contains("width 2"));
  CHECK_THROWS_WITH(q->sample(torch::zeros({1, 2}), 0), Catch::Contains("n"));
  CHECK_THROWS_WITH(q->log_prob(torch::zeros({2, 3}), torch::zeros({3, 2})), Catch::Contains("one condition per latent"));
}

TEST_CASE("every translator option round-trips, and a corrupt options record is a clear error",
          "[translator][serialize][errors]") {
  auto dir = std::filesystem::temp_directory_path() / "tr0n_test_options";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "q.pt").string(), bad = (dir / "bad.pt").string();
  const auto opts = mixture_translator_options(4, 3)
                        .components(2)
                        .hidden(9)
                        .radius(1.5)
                        .init_std(0.2)
                        .min_std(1e-3)
                        .transform(condition_transform::l2);
  mixture_translator q(opts);
  torch::save(q, path);
  auto back = load_mixture_translator(path);
  CHECK(back->options.condition_dim() == 4);
  CHECK(back->options.latent_dim() == 3);
  CHECK(back->options.components() == 2);
  CHECK(back->options.hidden() == 9);
  CHECK(back->options.radius() == 1.5);
  CHECK(back->options.init_std() == 0.2);
  CHECK(back->options.min_std() == 1e-3);
  CHECK(back->options.transform() == condition_transform::l2);
  auto c = torch::randn({3, 4}), z = torch::randn({3, 3});
  CHECK(torch::equal(q->log_prob(z, c), back->log_prob(z, c)));

  mixture_translator other_floor(mixture_translator_options(opts).min_std(1e-6));
  CHECK_THROWS_WITH(torch::load(other_floor, path), Catch::Contains("min_std = 0.001"));
  mixture_translator other_space(mixture_translator_options(opts).transform(condition_transform::softmax));
  CHECK_THROWS_WITH(torch::load(other_space, path), Catch::Contains("transform = l2") && Catch::Contains("softmax"));

  auto write_record = [&](std::vector<double> fields) {
    torch::serialize::OutputArchive archive;
    archive.write(mixture_translator_impl::record_key, torch::tensor(fields, torch::kFloat64), /*is_buffer=*/true);
    archive.save_to(bad);
  };
  const std::vector<double> good{2, 4, 3, 2, 9, 1.5, 0.2, 1e-3, 2};
  auto with = [&](size_t i, double v) {
    auto f = good;
    f[i] = v;
    return f;
  };
  write_record(with(7, NAN));
  CHECK_THROWS_WITH(load_mixture_translator(bad), Catch::Contains("min_std") && Catch::Contains("finite"));
  write_record(with(1, 1e12));  // a width that would allocate terabytes
  CHECK_THROWS_WITH(load_mixture_translator(bad), Catch::Contains("condition_dim") && Catch::Contains("1000000000000"));
  write_record(with(4, 1 << 20));  // each size in bounds, the whole too large
  CHECK_THROWS_WITH(load_mixture_translator(bad), Catch::Contains("parameters"));
  write_record(with(3, 2.5));
  CHECK_THROWS_WITH(load_mixture_translator(bad), Catch::Contains("components") && Catch::Contains("integer"));
  write_record(with(8, 7));
  CHECK_THROWS_WITH(load_mixture_translator(bad), Catch::Contains("transform"));
  write_record({4, 3, 2, 9, 1.5});  // tr0n 0.1's record, which had no condition transform
  CHECK_THROWS_WITH(load_mixture_translator(bad), Catch::Contains("format version") && Catch::Contains("retrain"));
  std::filesystem::remove_all(dir);
}
