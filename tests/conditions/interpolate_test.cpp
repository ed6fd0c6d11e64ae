// Semantic interpolation between conditions.
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

TEST_CASE("semantic interpolation: endpoints are the conditions, the path stays on the sphere", "[interpolate]") {
  torch::manual_seed(3);
  auto a = torch::randn({16}, torch::kFloat64);
  auto b = torch::randn({16}, torch::kFloat64);
  a = a / a.norm();
  b = b / b.norm();
  auto path = interpolate(a, b, 7);
  REQUIRE(path.sizes() == torch::IntArrayRef{7, 16});
  CHECK(torch::allclose(path[0], a, 1e-12, 1e-12));
  CHECK(torch::allclose(path[6], b, 1e-12, 1e-12));
  CHECK(torch::allclose(path.norm(2, 1), torch::ones({7}, torch::kFloat64), 1e-12, 1e-12));
  // Equal angular steps: consecutive cosines are all equal.
  auto cosines = (path.narrow(0, 0, 6) * path.narrow(0, 1, 6)).sum(1);
  CHECK(torch::allclose(cosines, cosines[0].expand({6}), 1e-9, 1e-9));
  // The midpoint of a slerp is not the (shorter) linear midpoint.
  CHECK(path[3].norm().item<double>() > (0.5 * (a + b)).norm().item<double>() + 1e-3);
  // Norms interpolate linearly when the inputs are not unit vectors.
  CHECK(slerp(2 * a, 4 * b, 0.5).norm().item<double>() == Approx(3.0));
  CHECK_THROWS_WITH(interpolate(a, b, 1), Catch::Contains("k"));
  CHECK_THROWS_WITH(slerp(a, b.narrow(0, 0, 3), 0.5), Catch::Contains("same shape"));
}
