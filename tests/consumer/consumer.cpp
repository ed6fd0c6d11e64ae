// Built against tr0n as a user takes it: composes a sampler and checks it runs.
#include <tr0n.hpp>
#include <tr0n/version.hpp>

#include <cstdio>
#include <cstring>

int main() {
  std::printf("tr0n %s\n", TR0N_VERSION);
  static_assert(TR0N_VERSION_MAJOR == 0 && TR0N_VERSION_MINOR >= 2);
  auto g = tr0n::make_generator([](const torch::Tensor& z) { return z; }, tr0n::standard_normal(2));
  auto f = tr0n::make_encoder([](const torch::Tensor& x) { return x; }, 2);
  tr0n::sampler s(g, f, tr0n::squared_distance{}, tr0n::sampler_options().steps(50).seed(1), tr0n::init::prior{},
                  tr0n::constant_step{0.1}, tr0n::no_noise{});
  auto r = s.sample(torch::tensor({{1.0f, -1.0f}}), 4);
  return (r.ok.all().item<bool>() && r.energy.max().item<double>() < 1e-3) ? 0 : 1;
}
