// Conditional samples per second at equal quality, on the Fashion-MNIST job's
// models, measured side by side in one run: each configuration samples 100
// images of every class, the job's evaluation CNN (another architecture and
// seed than the energy's classifier) scores them, and the table gives samples
// per second and evaluation accuracy, each with its standard error, and the
// speed-up over the authors' loop in Python.
//
//  - python official-style: benchmarks/official_style.py, the authors' hybrid
//    evaluation loop in PyTorch (batch 1, mixture start with Adam on the
//    logits, SGLD at lr 0.1 with momentum 0.99, gradient norms clipped at 1,
//    noise 0.01, 100 iterations, cross-entropy energy), on the TorchScript
//    copies of the same models and the same translator's mixtures.
//  - tr0n, the same dynamics at batch 1: tr0n's sampler, one condition at a
//    time, every sample from its own seed.
//  - the same dynamics, batched: every condition in one batch.
//  - tr0n: translator samples, the job's dynamics, batched, T = 100, 10, 5, 0;
//    and T = 10 with the models in bfloat16 (`sampler_options().precision`),
//    with its speed against float32 at 256 chains, in alternating pairs.
//
// Rates are per block (a class for the one-at-a-time rows, a repetition for
// the batched ones); their standard error is over blocks. Accuracy's standard
// error is sqrt(p (1 - p) / n) over the 1,000 samples of a row.
//
// Needs the job's models (run the README's main command first); their folder
// is TR0N_MODELS_DIR, by default models/ in the source tree; and Debian's
// python3-torch for the Python row (TR0N_PYTHON names another interpreter).
// Run: build/benchmarks/quality_benchmark (about 4 minutes on 2 cores).
#include "fashion_models.hpp"
#include <fashion/idx.hpp>
#include <fashion/metrics.hpp>

#include <tr0n/io/tensor_file.hpp>
#include <tr0n/runtime/allocator.hpp>
#include <tr0n/runtime/threads.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace {

using bench::classes;
using bench::shared;

constexpr int64_t per_class = 100;
constexpr const char* python_row = "python official-style, batch 1";

/// One configuration's measurement: samples and seconds per block, and accuracy.
struct outcome {
  std::vector<double> rates;  ///< samples per second, one per block
  double accuracy = 0, frechet = 0, diversity = 0;
  int64_t samples = 0, batch = 0, steps = 0;
  double rate() const { return std::accumulate(rates.begin(), rates.end(), 0.0) / static_cast<double>(rates.size()); }
  double rate_se() const {
    if (rates.size() < 2) return 0;
    double m = rate(), ss = 0;
    for (double r : rates) ss += (r - m) * (r - m);
    return std::sqrt(ss / static_cast<double>(rates.size() - 1) / static_cast<double>(rates.size()));
  }
  double accuracy_se() const { return std::sqrt(accuracy * (1 - accuracy) / static_cast<double>(samples)); }
};
std::map<std::string, outcome>& outcomes() {
  static std::map<std::string, outcome> o;
  return o;
}

bool models_ready(benchmark::State& state) {
  if (const auto& m = shared(); !m.missing.empty()) {
    state.SkipWithError(("missing " + m.missing + ": run the Fashion-MNIST main job first (README)").c_str());
    return false;
  }
  return true;
}

/// The evaluation CNN's features of the 10,000 test images (Fréchet distances are to them).
const torch::Tensor& test_features() {
  static const torch::Tensor f = [] {
    torch::NoGradGuard no_grad;
    const auto test = fashion::load_split("/usr/share/datasets/fashion-mnist", "t10k");
    return fashion::in_batches(test.images, [](const torch::Tensor& x) { return shared().judge->features(x); });
  }();
  return f;
}

/// Scores images drawn class-major, `per_class` of each (accuracy, Fréchet
/// distance to the test set, within-class diversity), and records the row.
void record(benchmark::State& state, const std::string& name, const torch::Tensor& x, std::vector<double> rates,
            int64_t batch, int64_t steps) {
  const auto labels = torch::arange(classes).repeat_interleave(per_class);
  outcome o{std::move(rates), 0, 0, 0, x.size(0), batch, steps};
  {
    torch::NoGradGuard no_grad;
    const tr0n::thread_scope cnn(0, tr0n::thread_workload::convolutions);
    o.accuracy = fashion::accuracy(shared().judge, x, labels);
    const auto features = fashion::in_batches(x, [](const torch::Tensor& b) { return shared().judge->features(b); });
    o.frechet = fashion::frechet_distance(features, test_features());
    o.diversity = fashion::within_class_diversity(x, labels, classes);
  }
  state.counters["samples_per_s"] = o.rate();
  state.counters["eval_acc"] = o.accuracy;
  outcomes()[name] = std::move(o);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Samples `per_class` images of every class with `sampler`: one condition at
/// a time (blocks: classes), or every condition in one batch (blocks: `repeats`).
template <class Sampler>
void run(benchmark::State& state, const std::string& name, Sampler& s, int64_t steps, bool one_at_a_time,
         int64_t repeats = 3) {
  const auto conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  torch::Tensor x;
  std::vector<double> rates;
  for (auto _ : state) {
    if (one_at_a_time) {
      std::vector<torch::Tensor> xs;
      for (int64_t c = 0; c < classes; ++c) {
        const auto start = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < per_class; ++i) xs.push_back(s.sample(conditions[c].unsqueeze(0), 1).x);
        rates.push_back(static_cast<double>(per_class) / seconds_since(start));
      }
      x = torch::cat(xs);
    } else {
      for (int64_t r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        x = s.sample(conditions, per_class).x;
        rates.push_back(static_cast<double>(x.size(0)) / seconds_since(start));
      }
    }
  }
  record(state, name, x, std::move(rates), one_at_a_time ? 1 : x.size(0), steps);
}

// The official dynamics: lr 0.1, momentum 0.99, gradient norm clipped at 1, noise 0.01,
// on the cross-entropy alone. Unseeded, each call draws its own seed from the global
// generator (seeded once below), so every one-at-a-time sample is distinct.
const auto official_dynamics = tr0n::sampler_options().steps(100).momentum(0.99).grad_clip(1.0);
auto official_sampler() {
  const auto& m = shared();
  return tr0n::sampler(m.generator(), m.aux, tr0n::cross_entropy{}, m.translator, official_dynamics,
                       tr0n::init::translator_mixture{}, tr0n::constant_step{0.1}, tr0n::fixed_noise{0.01});
}
// The job's dynamics: translator samples, 20 x cross-entropy + the latent prior, step 0.005.
auto job_sampler(int64_t steps, tr0n::precision compute = tr0n::precision::fp32) {
  const auto& m = shared();
  return tr0n::sampler(m.generator(), m.aux, 20.0 * tr0n::cross_entropy{} + 1.0 * tr0n::latent_prior{}, m.translator,
                       tr0n::sampler_options().steps(steps).momentum(0.0).grad_clip(200.0).seed(7).precision(compute),
                       tr0n::init::translator_sample{}, tr0n::constant_step{0.005}, tr0n::langevin_noise{});
}

/// The Python baseline: the translator's mixture for each class goes to
/// official_style.py as tensor files; its images come back and are scored here.
void python_official(benchmark::State& state) {
  if (!models_ready(state)) return;
  const auto dir = std::filesystem::temp_directory_path() / ("tr0n_quality_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    torch::NoGradGuard no_grad;
    const auto p = shared().translator->mixture(tr0n::one_hot_conditions(torch::arange(classes), classes));
    tr0n::write_tensor_file((dir / "logits.pt").string(), p.logits);
    tr0n::write_tensor_file((dir / "means.pt").string(), p.means);
  }
  const char* python = std::getenv("TR0N_PYTHON") ? std::getenv("TR0N_PYTHON") : "/usr/bin/python3";
  const auto models = std::getenv("TR0N_MODELS_DIR") ? std::string(std::getenv("TR0N_MODELS_DIR")) : TR0N_MODELS_DIR;
  const auto out = (dir / "python").string();
  const auto command = std::string(python) + " " + TR0N_BENCHMARKS_DIR "/official_style.py '" + models + "' '" +
                       (dir / "logits.pt").string() + "' '" + (dir / "means.pt").string() + "' '" + out +
                       "' --per-class " + std::to_string(per_class);
  for (auto _ : state) {
    if (std::system(command.c_str()) != 0) {
      state.SkipWithError(("failed: " + command).c_str());
      return;
    }
  }
  std::ifstream in(out + ".json");
  const auto report = nlohmann::json::parse(in);
  std::vector<double> rates;
  for (double seconds : report.at("seconds_per_class")) rates.push_back(static_cast<double>(per_class) / seconds);
  record(state, python_row, tr0n::read_tensor_file(out + ".images.pt"), std::move(rates), 1, 100);
  std::filesystem::remove_all(dir);
}
void tr0n_batch1(benchmark::State& state) {
  if (!models_ready(state)) return;
  torch::manual_seed(7);
  auto s = official_sampler();
  run(state, "tr0n, official dynamics, batch 1", s, 100, true);
}
void tr0n_official_batched(benchmark::State& state) {
  if (!models_ready(state)) return;
  torch::manual_seed(7);
  auto s = official_sampler();
  run(state, "tr0n, official dynamics, batched", s, 100, false);
}
void tr0n_job(benchmark::State& state) {
  if (!models_ready(state)) return;
  const auto steps = state.range(0);
  auto s = job_sampler(steps);
  run(state, steps == 0 ? "tr0n: translator only, batched" : "tr0n: translator, T=" + std::to_string(steps) + ", batched",
      s, steps, false);
}
/// bfloat16 against float32 on the job's models: 256 chains, T = 10, each with
/// its thread policy (float32 products in OpenBLAS, bfloat16 in oneDNN on
/// LibTorch's pool), alternating, 7 pairs; the ratio of the medians.
double precision_speedup = 0;
void bf16_vs_fp32(benchmark::State& state) {
  if (!models_ready(state)) return;
  const auto conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  auto s32 = job_sampler(10), s16 = job_sampler(10, tr0n::precision::bf16);
  std::vector<double> t32, t16;
  // Each timed call follows an untimed one in the same precision: switching from one
  // thread pool to the other leaves the idle pool's threads spinning for a while
  // (OpenBLAS's do, for about a tenth of a second), which a run in one precision never sees.
  auto time = [&](auto& s, std::vector<double>& into) {
    const tr0n::thread_scope threads(0, tr0n::workload_for(s.options().precision()));
    s.sample(conditions, 26);
    const auto start = std::chrono::steady_clock::now();
    s.sample(conditions, 26);  // 260 chains: 256 and one condition's rounding
    into.push_back(seconds_since(start));
  };
  for (auto _ : state) {
    for (int i = 0; i < 7; ++i) {
      time(s32, t32);
      time(s16, t16);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  precision_speedup = median(t32) / median(t16);
  state.counters["fp32_samples_per_s"] = 260 / median(t32);
  state.counters["bf16_samples_per_s"] = 260 / median(t16);
  state.counters["bf16_speedup"] = precision_speedup;
}
void tr0n_t10_bf16(benchmark::State& state) {
  if (!models_ready(state)) return;
  auto s = job_sampler(10, tr0n::precision::bf16);
  const tr0n::thread_scope threads(0, tr0n::workload_for(s.options().precision()));
  run(state, "tr0n: translator, T=10, batched, bf16", s, 10, false);
}

BENCHMARK(python_official)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_batch1)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_official_batched)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_job)->Arg(100)->Arg(10)->Arg(5)->Arg(0)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(tr0n_t10_bf16)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(bf16_vs_fp32)->Iterations(1)->Unit(benchmark::kSecond);

void print_table() {
  const auto& o = outcomes();
  const auto base = o.find(python_row);
  if (base == o.end()) return;
  const auto& py = base->second;
  std::printf("\n%-38s %5s %4s %20s %16s %7s %9s %18s\n", "configuration", "batch", "T", "samples/s", "eval_acc",
              "FD", "diversity", "x python");
  auto speedup = [&](const outcome& r) {
    const double s = r.rate() / py.rate();
    const double rel = std::hypot(r.rate_se() / r.rate(), py.rate_se() / py.rate());
    return std::pair{s, s * rel};
  };
  const outcome* best = nullptr;
  std::string best_name;
  for (const auto& [name, r] : o) {
    const auto [s, se] = speedup(r);
    std::printf("%-38s %5lld %4lld %11.1f +- %6.1f %7.3f +- %5.3f %7.1f %9.2f %8.1fx +- %6.1f\n", name.c_str(),
                static_cast<long long>(r.batch), static_cast<long long>(r.steps), r.rate(), r.rate_se(), r.accuracy,
                r.accuracy_se(), r.frechet, r.diversity, s, se);
    if (r.accuracy >= py.accuracy && &r != &py && (!best || r.rate() > best->rate())) {
      best = &r;
      best_name = name;
    }
  }
  if (precision_speedup > 0)
    std::printf("bf16 against fp32, 256 chains, T = 10 (median of 7 alternating pairs): %.2fx the samples per second\n",
                precision_speedup);
  if (best) {
    const auto [s, se] = speedup(*best);
    std::printf("fastest at evaluation accuracy >= the Python baseline's %.3f: %s (%.3f), %.0fx +- %.0f its samples per "
                "second\n",
                py.accuracy, best_name.c_str(), best->accuracy, s, se);
  } else {
    std::printf("no tr0n configuration reaches the Python baseline's accuracy %.3f\n", py.accuracy);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Every configuration, and the Python baseline, with large blocks kept in the heap
  // (tr0n/runtime/allocator.hpp): otherwise glibc's moving mmap threshold makes a batched
  // run one or two times as slow from one run to the next.
  const bool heap = tr0n::keep_large_blocks();
  std::printf("heap: %s\n", heap ? "large blocks kept (glibc mmap threshold 32 MiB, trim 256 MiB)" : "the C library's default");
  const auto config = tr0n::configure_threads(0);
  std::printf("%s\n", config.describe().c_str());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_table();
}
