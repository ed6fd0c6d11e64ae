// Conditional samples per second at equal quality, on the Fashion-MNIST job's
// models: each configuration samples class-conditional images, the job's
// evaluation CNN (another architecture and seed than the energy's classifier)
// scores them, and the table says which configurations reach 0.90 accuracy
// and how many samples per second they deliver against the official one.
//
//  - official: the authors' configuration with tr0n's policies: one condition
//    at a time, the hybrid mixture start, T = 100, momentum 0.99, gradient
//    clipping at 1, noise 0.01.
//  - the same, batched: every condition in one batch.
//  - tr0n: translator samples, the job's dynamics, batched, T = 100, 10, 5, 0.
//
// Needs the job's models (run the README's main command first); their folder
// is TR0N_MODELS_DIR, by default models/ in the source tree.
// Run: build/benchmarks/quality_benchmark (about a minute on 2 cores).
#include "fashion_models.hpp"

#include <tr0n/runtime/threads.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using bench::classes;
using bench::shared;

struct outcome {
  double samples_per_s = 0, accuracy = 0;
  int64_t batch = 0, steps = 0;
};
std::map<std::string, outcome>& outcomes() {
  static std::map<std::string, outcome> o;
  return o;
}

/// Samples `per_class` images of every class, `batch` conditions' worth at a
/// time; times the sampling alone, then scores it with the evaluation CNN.
template <class Init, class Noise>
void run(benchmark::State& state, const std::string& name, Init init, Noise noise, int64_t steps,
         tr0n::sampler_options options, int64_t per_class, bool one_at_a_time) {
  auto& m = shared();
  if (!m.missing.empty()) {
    state.SkipWithError(("missing " + m.missing + ": run the Fashion-MNIST main job first (README)").c_str());
    return;
  }
  const auto energy = 20.0 * tr0n::cross_entropy{} + 1.0 * tr0n::latent_prior{};
  tr0n::sampler s(m.generator(), m.aux, energy, m.translator, options.steps(steps), init, tr0n::constant_step{0.005},
                  noise);
  const auto conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  const auto labels = torch::arange(classes).repeat_interleave(per_class);
  torch::Tensor x;
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (one_at_a_time) {
      std::vector<torch::Tensor> xs;
      for (int64_t i = 0; i < classes * per_class; ++i) xs.push_back(s.sample(conditions[i / per_class].unsqueeze(0), 1).x);
      x = torch::cat(xs);
    } else {
      x = s.sample(conditions, per_class).x;
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  double accuracy;
  {
    torch::NoGradGuard no_grad;
    const tr0n::thread_scope cnn(0, tr0n::thread_workload::convolutions);
    accuracy = fashion::accuracy(m.judge, x, labels);
  }
  const outcome o{static_cast<double>(x.size(0)) / seconds, accuracy, one_at_a_time ? 1 : x.size(0), steps};
  outcomes()[name] = o;
  state.counters["samples_per_s"] = o.samples_per_s;
  state.counters["eval_acc"] = o.accuracy;
}

const auto official_dynamics = tr0n::sampler_options().momentum(0.99).grad_clip(1.0).seed(7);
const auto job_dynamics = tr0n::sampler_options().momentum(0.0).grad_clip(200.0).seed(7);

void official(benchmark::State& state) {
  run(state, "official: hybrid, T=100, one at a time", tr0n::init::translator_mixture{}, tr0n::fixed_noise{0.01}, 100,
      official_dynamics, 10, true);
}
void official_batched(benchmark::State& state) {
  run(state, "official dynamics, batched", tr0n::init::translator_mixture{}, tr0n::fixed_noise{0.01}, 100,
      official_dynamics, 100, false);
}
void tr0n_t100(benchmark::State& state) {
  run(state, "tr0n: translator, T=100, batched", tr0n::init::translator_sample{}, tr0n::langevin_noise{}, 100,
      job_dynamics, 100, false);
}
void tr0n_t10(benchmark::State& state) {
  run(state, "tr0n: translator, T=10, batched", tr0n::init::translator_sample{}, tr0n::langevin_noise{}, 10,
      job_dynamics, 100, false);
}
void tr0n_t5(benchmark::State& state) {
  run(state, "tr0n: translator, T=5, batched", tr0n::init::translator_sample{}, tr0n::langevin_noise{}, 5,
      job_dynamics, 100, false);
}
void tr0n_t0(benchmark::State& state) {
  run(state, "tr0n: translator only, batched", tr0n::init::translator_sample{}, tr0n::langevin_noise{}, 0,
      job_dynamics, 100, false);
}
BENCHMARK(official)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(official_batched)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_t100)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_t10)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_t5)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_t0)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  const auto config = tr0n::configure_threads(0);
  std::printf("%s\n", config.describe().c_str());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const auto& o = outcomes();
  const auto base = o.find("official: hybrid, T=100, one at a time");
  if (base == o.end()) return 0;
  std::printf("\n%-40s %6s %5s %12s %9s %9s\n", "configuration", "batch", "T", "samples/s", "eval_acc", "speed-up");
  const outcome* best = nullptr;
  std::string best_name;
  for (const auto& [name, r] : o) {
    std::printf("%-40s %6lld %5lld %12.1f %9.3f %8.1fx\n", name.c_str(), static_cast<long long>(r.batch),
                static_cast<long long>(r.steps), r.samples_per_s, r.accuracy, r.samples_per_s / base->second.samples_per_s);
    if (r.accuracy >= 0.90 && (!best || r.samples_per_s > best->samples_per_s)) {
      best = &r;
      best_name = name;
    }
  }
  if (base->second.accuracy < 0.90)
    std::printf("the official configuration scores %.3f, below 0.90\n", base->second.accuracy);
  if (best)
    std::printf("fastest at eval accuracy >= 0.90: %s, %.1fx the official configuration's samples per second\n",
                best_name.c_str(), best->samples_per_s / base->second.samples_per_s);
}
