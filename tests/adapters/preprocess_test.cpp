// The preprocessing stage: resize and normalisation.
#include <tr0n.hpp>

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

TEST_CASE("the preprocessing stage resizes and normalises", "[augment][preprocess]") {
  auto f = make_encoder([](const torch::Tensor& x) { return x.flatten(1); }, 3 * 4 * 4);
  preprocessed_encoder pre(f, preprocess_options().size(4).mean({0.5, 0.5, 0.5}).std({0.25, 0.25, 0.25}));
  auto x = torch::full({2, 3, 8, 8}, 0.75);
  auto y = pre.preprocess(x);
  CHECK(y.sizes() == torch::IntArrayRef{2, 3, 4, 4});
  CHECK(y.sub(1.0).abs().max().item<double>() < 1e-5);  // (0.75 - 0.5) / 0.25
  CHECK(pre.forward(x).sizes() == torch::IntArrayRef{2, 48});
  CHECK_THROWS_WITH(pre.preprocess(torch::zeros({1, 1, 8, 8})), Catch::Contains("channels"));
  CHECK_THROWS_WITH(preprocessed_encoder(f, preprocess_options().mean({0.5}).std({})), Catch::Contains("std"));

  auto g = make_generator([](const torch::Tensor& z) { return torch::tanh(z); }, standard_normal(2));
  rescaled_generator g01(g, -1.0, 1.0);
  auto out = g01.forward(torch::tensor({{-100.0, 100.0}}));
  CHECK(out[0][0].item<double>() == Approx(0.0).margin(1e-6));
  CHECK(out[0][1].item<double>() == Approx(1.0));
}
