// Overhead of tr0n's composed sampler against the same Langevin loop written
// by hand in LibTorch, measured side by side in one run; the ratio is printed
// at the end (1.00 means no overhead).
#include <tr0n.hpp>

#include <benchmark/benchmark.h>
#include <torch/nn/modules/linear.h>

#include <cstdio>
#include <map>
#include <string>

namespace {

constexpr int64_t latent = 32, classes = 10, chains = 256, steps = 20;

struct net_generator_impl : torch::nn::Module {
  using tr0n_tag = tr0n::generator_tag;
  net_generator_impl()
      : l1(register_module("l1", torch::nn::Linear(latent, 256))),
        l2(register_module("l2", torch::nn::Linear(256, 784))),
        p(latent) {}
  torch::Tensor forward(const torch::Tensor& z) { return torch::sigmoid(l2(torch::relu(l1(z)))); }
  const tr0n::standard_normal& prior() const { return p; }
  torch::nn::Linear l1, l2;
  tr0n::standard_normal p;
};
TORCH_MODULE_IMPL(net_generator, net_generator_impl);

struct net_classifier_impl : torch::nn::Module {
  using tr0n_tag = tr0n::encoder_tag;
  net_classifier_impl()
      : l1(register_module("l1", torch::nn::Linear(784, 256))),
        l2(register_module("l2", torch::nn::Linear(256, classes))) {}
  torch::Tensor forward(const torch::Tensor& x) { return l2(torch::relu(l1(x))); }
  int64_t condition_dim() const { return classes; }
  torch::nn::Linear l1, l2;
};
TORCH_MODULE_IMPL(net_classifier, net_classifier_impl);

struct fixture {
  net_generator g;
  net_classifier f;
  torch::Tensor conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  fixture() {
    torch::manual_seed(0);
    g = net_generator();
    f = net_classifier();
    for (auto& p : g->parameters()) p.requires_grad_(false);
    for (auto& p : f->parameters()) p.requires_grad_(false);
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
