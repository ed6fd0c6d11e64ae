// Overhead of tr0n's composed sampler against the same Langevin loop written
// by hand in LibTorch, measured side by side in one run; the ratio is printed
// at the end (1.00 means no overhead).
#include "../tests/support/toy_models.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>

namespace {

constexpr int64_t latent = 32, classes = 10, chains = 256, steps = 20;

/// A frozen MLP generator onto 784 "pixels" and a linear classifier, from the tests' toy models.
struct fixture {
  tr0n_test::mlp_generator g{nullptr};
  tr0n_test::linear_classifier f{nullptr};
  torch::Tensor conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  fixture() {
    torch::manual_seed(0);
    g = tr0n_test::mlp_generator(latent, 256, 784);
    f = tr0n_test::linear_classifier(784, classes, 1.0);
  }
};
fixture& shared() {
  static fixture fx;
  return fx;
}

constexpr double eta = 0.05, sigma = 0.01, momentum = 0.5, clip = 5.0;

void tr0n_sampler(benchmark::State& state) {
  auto& fx = shared();
  tr0n::sampler s(fx.g, fx.f, tr0n::cross_entropy{}, tr0n::sampler_options().steps(steps).momentum(momentum).grad_clip(clip),
                  tr0n::init::prior{}, tr0n::constant_step{eta}, tr0n::fixed_noise{sigma});
  for (auto _ : state) benchmark::DoNotOptimize(s.sample(fx.conditions, chains / classes).energy);
}

void handwritten_loop(benchmark::State& state) {
  auto& fx = shared();
  for (auto _ : state) {
    auto c = fx.conditions.repeat_interleave(chains / classes, 0);
    auto z = torch::randn({c.size(0), latent});
    torch::Tensor velocity;
    for (int64_t t = 0; t < steps; ++t) {
      z = z.detach().requires_grad_(true);
      auto e = -(c * torch::log_softmax(fx.f->forward(fx.g->forward(z)), -1)).sum(-1);
      auto g = torch::autograd::grad({e.sum()}, {z})[0];
      g = g * (clip / (g.norm(2, 1, true) + 1e-12)).clamp_max(1.0);
      velocity = velocity.defined() ? velocity.mul(momentum).add(g) : g;
      torch::NoGradGuard no_grad;
      z = z.detach() - eta * velocity + sigma * torch::randn_like(z);
    }
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(-(c * torch::log_softmax(fx.f->forward(fx.g->forward(z)), -1)).sum(-1));
  }
}

BENCHMARK(tr0n_sampler)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(handwritten_loop)->Unit(benchmark::kMillisecond)->MinTime(2.0);

/// Console output as usual, plus the ratio of the two loops at the end.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    // With --benchmark_repetitions, compare the means; otherwise the single runs.
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration || r.aggregate_name == "mean")
        times_[r.run_name.function_name] = r.GetAdjustedRealTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    if (times_.count("tr0n_sampler") && times_.count("handwritten_loop"))
      std::printf("ratio tr0n_sampler / handwritten_loop = %.3f\n", times_["tr0n_sampler"] / times_["handwritten_loop"]);
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
