// The sampler's speed, measured side by side in one run (Google Benchmark):
//  - overhead: tr0n's composed sampler against the same Langevin loop written
//    by hand in LibTorch, at B = 1, 16, 256 and 1024 chains, on LibTorch
//    modules and on the same models as TorchScript; the ratios are printed
//    at the end (1.00 means no overhead);
//  - parts: one step's cost split into generator, encoder, energy and update;
//  - threads: step time against LibTorch's and OpenBLAS's pool sizes;
//  - training: translator training throughput (pairs/s) against batch size.
//
// Run: build/benchmarks/sampler_benchmark (about two minutes on 2 cores);
// --benchmark_filter=overhead runs one group.
#include "support/toy_models.hpp"

#include <tr0n/adapters/torchscript.hpp>
#include <tr0n/runtime/allocator.hpp>
#include <tr0n/runtime/threads.hpp>

#include <benchmark/benchmark.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int64_t latent = 32, hidden = 256, pixels = 784, classes = 10, steps = 20;
constexpr double eta = 0.05, sigma = 0.01, momentum = 0.5, clip = 5.0;
const std::vector<int64_t> sizes{1, 16, 256, 1024};
constexpr int64_t n_large_pairs = 40;

/// TR0N_TEST_DEVICE picks the device (cpu by default; scripts/gpu-check.sh sets cuda).
const torch::Device device = tr0n_test::test_device();

torch::Tensor conditions(int64_t b) {
  return tr0n::one_hot_conditions(torch::arange(b) % classes, classes).to(device);
}
/// Waits for the result (a device's queue runs ahead of the host); costs both sides the same.
double settle(const torch::Tensor& t) { return t.sum().item<double>(); }

/// Saves a TorchScript module with the given parameters and forward body.
std::string save_script(const std::string& name, const std::vector<std::pair<std::string, torch::Tensor>>& params,
                        const std::string& body) {
  torch::jit::Module m(name);
  for (const auto& [key, value] : params) m.register_parameter(key, value.detach().clone(), /*is_buffer=*/false);
  m.define("def forward(self, x):\n    return " + body + "\n");
  const auto path = (std::filesystem::temp_directory_path() / ("tr0n_bench_" + name + ".pt")).string();
  m.save(path);
  return path;
}

/// A frozen tanh MLP generator onto 784 "pixels" and a linear classifier
/// (the tests' toy models), and the same two as TorchScript.
struct fixture {
  tr0n_test::mlp_generator g{nullptr};
  tr0n_test::linear_classifier f{nullptr};
  std::optional<tr0n::torchscript_generator<tr0n::standard_normal>> ts_g;
  std::optional<tr0n::torchscript_encoder> ts_f;
  fixture() {
    torch::manual_seed(0);
    g = tr0n_test::mlp_generator(latent, hidden, pixels);
    f = tr0n_test::linear_classifier(pixels, classes, 1.0);
    g->to(device);
    f->to(device);
    const auto gen = save_script(
        "generator", {{"w1", g->l1->weight}, {"b1", g->l1->bias}, {"w2", g->l2->weight}, {"b2", g->l2->bias}},
        "torch.linear(torch.tanh(torch.linear(x * 1.5, self.w1, self.b1)), self.w2, self.b2)");
    const auto enc = save_script("encoder", {{"w", f->fc->weight}, {"b", f->fc->bias}},
                                 "torch.linear(x, self.w, self.b)");
    ts_g.emplace(gen, tr0n::standard_normal(latent), tr0n::torchscript_options().device(device));
    ts_f.emplace(enc, ts_g->example_output(), tr0n::torchscript_options().device(device));
    for (auto p : ts_g->module().parameters()) p.requires_grad_(false);
    for (auto p : ts_f->module().parameters()) p.requires_grad_(false);
  }
};
fixture& shared() {
  static fixture fx;
  return fx;
}

tr0n::sampler_options options() {
  return tr0n::sampler_options().steps(steps).momentum(momentum).grad_clip(clip).seed(0);
}

/// The loop a LibTorch user would write: cross-entropy energy, per-row
/// gradient clipping, heavy-ball momentum, Gaussian noise.
template <class Gen, class Enc>
torch::Tensor handwritten(Gen&& gen, Enc&& enc, const torch::Tensor& c) {
  auto z = torch::randn({c.size(0), latent}, c.options());
  torch::Tensor velocity;
  for (int64_t t = 0; t < steps; ++t) {
    z = z.detach().requires_grad_(true);
    auto e = -(c * torch::log_softmax(enc(gen(z)), -1)).sum(-1);
    auto g = torch::autograd::grad({e.sum()}, {z})[0];
    g = g * (clip / (g.norm(2, 1, true) + 1e-12)).clamp_max(1.0);
    velocity = velocity.defined() ? velocity.mul(momentum).add(g) : g;
    torch::NoGradGuard no_grad;
    z = z.detach() - eta * velocity + sigma * torch::randn_like(z);
  }
  torch::NoGradGuard no_grad;
  return -(c * torch::log_softmax(enc(gen(z)), -1)).sum(-1);
}

/// The overhead at one size: the ratio of the medians of tr0n's and the hand
/// loop's times, and the median of the per-pair ratios with its 95% interval
/// (order statistics of the pairs: a pair's two runs share the machine's state
/// of the moment, so its ratio varies less than either time).
struct overhead_result {
  double ratio_of_medians = 0, median_ratio = 0, low = 0, high = 0;
  size_t pairs = 0;
};
std::map<std::string, overhead_result>& ratios() {
  static std::map<std::string, overhead_result> r;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// Ranks (0-based) of a distribution-free 95% interval for the median of `n`
/// sorted values: the binomial(n, 1/2) quantiles, by the normal approximation.
std::pair<size_t, size_t> median_interval(size_t n) {
  const double half = 0.5 * static_cast<double>(n), spread = 0.98 * std::sqrt(static_cast<double>(n));
  const auto lo = static_cast<size_t>(std::max(0.0, std::floor(half - spread)));
  const auto hi = static_cast<size_t>(std::min(static_cast<double>(n) - 1, std::ceil(half + spread) - 1));
  return {lo, hi};
}

/// Times `ours` and `theirs` alternately, in turn first, one pair per iteration.
template <class Ours, class Theirs>
void side_by_side(benchmark::State& state, const std::string& name, Ours&& ours, Theirs&& theirs) {
  using clock = std::chrono::steady_clock;
  std::vector<double> a, b;
  bool ours_first = true;
  auto time = [](auto&& f, std::vector<double>& into) {
    const auto t0 = clock::now();
    benchmark::DoNotOptimize(settle(f()));
    into.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  };
  for (auto _ : state) {
    if (ours_first) {
      time(ours, a);
      time(theirs, b);
    } else {
      time(theirs, b);
      time(ours, a);
    }
    ours_first = !ours_first;
  }
  overhead_result r;
  std::vector<double> per_pair(a.size());
  for (size_t i = 0; i < a.size(); ++i) per_pair[i] = a[i] / b[i];
  std::sort(per_pair.begin(), per_pair.end());
  const auto [lo, hi] = median_interval(per_pair.size());
  r.ratio_of_medians = median(a) / median(b);
  r.median_ratio = median(per_pair);
  r.low = per_pair[lo], r.high = per_pair[hi], r.pairs = per_pair.size();
  state.counters["tr0n_ms"] = median(a) * 1e3;
  state.counters["hand_ms"] = median(b) * 1e3;
  state.counters["ratio"] = r.ratio_of_medians;
  ratios()[name + ", B = " + std::to_string(state.range(0))] = r;
}


// Both sides run on one thread: the ratio is what tr0n adds to the same work, and a
// two-thread BLAS pool's wake-ups (here the same product takes one or two times as
// long from one call to the next) would drown a few percent.
void overhead(benchmark::State& state) {
  const tr0n::thread_scope one(1, tr0n::thread_workload::matrix_products);
  auto& fx = shared();
  const auto c = conditions(state.range(0));
  tr0n::sampler s(fx.g, fx.f, tr0n::cross_entropy{}, options(), tr0n::init::prior{}, tr0n::constant_step{eta},
                  tr0n::fixed_noise{sigma});
  side_by_side(
      state, "modules", [&] { return s.sample(c, 1).energy; },
      [&] {
        return handwritten([&](const torch::Tensor& z) { return fx.g->forward(z); },
                           [&](const torch::Tensor& x) { return fx.f->forward(x); }, c);
      });
}
void overhead_torchscript(benchmark::State& state) {
  const tr0n::thread_scope one(1, tr0n::thread_workload::matrix_products);
  auto& fx = shared();
  const auto c = conditions(state.range(0));
  tr0n::sampler s(*fx.ts_g, *fx.ts_f, tr0n::cross_entropy{}, options(), tr0n::init::prior{},
                  tr0n::constant_step{eta}, tr0n::fixed_noise{sigma});
  auto& gm = fx.ts_g->module();
  auto& fm = fx.ts_f->module();
  side_by_side(
      state, "TorchScript", [&] { return s.sample(c, 1).energy; },
      [&] {
        return handwritten([&](const torch::Tensor& z) { return gm.forward({z}).toTensor(); },
                           [&](const torch::Tensor& x) { return fm.forward({x}).toTensor(); }, c);
      });
}
// At least 5 s a size, and 40 pairs where a pair takes longer than 0.2 s:
// a median of a handful of pairs is at the mercy of the BLAS pool's wake-ups.
void overhead_small(benchmark::internal::Benchmark* b) {
  for (auto n : sizes)
    if (n < 256) b->Arg(n);
  b->ArgName("B")->Unit(benchmark::kMillisecond)->MinTime(5.0);
}
void overhead_large(benchmark::internal::Benchmark* b) {
  for (auto n : sizes)
    if (n >= 256) b->Arg(n);
  b->ArgName("B")->Unit(benchmark::kMillisecond)->Iterations(n_large_pairs);
}
BENCHMARK(overhead)->Apply(overhead_small);
BENCHMARK(overhead)->Apply(overhead_large);
BENCHMARK(overhead_torchscript)->Apply(overhead_small);
BENCHMARK(overhead_torchscript)->Apply(overhead_large);

/// One step's parts at 256 chains, each forward and backward, as the sampler runs them.
void part_generator(benchmark::State& state) {
  auto& fx = shared();
  auto z = torch::randn({256, latent}, device);
  for (auto _ : state) {
    auto leaf = z.detach().requires_grad_(true);
    auto x = fx.g->forward(leaf);
    benchmark::DoNotOptimize(settle(torch::autograd::grad({x}, {leaf}, {torch::ones_like(x)})[0]));
  }
}
void part_encoder(benchmark::State& state) {
  auto& fx = shared();
  torch::Tensor x;
  {
    torch::NoGradGuard no_grad;
    x = fx.g->forward(torch::randn({256, latent}, device));
  }
  for (auto _ : state) {
    auto leaf = x.detach().requires_grad_(true);
    auto y = fx.f->forward(leaf);
    benchmark::DoNotOptimize(settle(torch::autograd::grad({y}, {leaf}, {torch::ones_like(y)})[0]));
  }
}
void part_energy(benchmark::State& state) {
  const auto c = conditions(256);
  auto logits = torch::randn({256, classes}, device);
  for (auto _ : state) {
    auto leaf = logits.detach().requires_grad_(true);
    auto e = -(c * torch::log_softmax(leaf, -1)).sum(-1);
    benchmark::DoNotOptimize(settle(torch::autograd::grad({e.sum()}, {leaf})[0]));
  }
}
/// The update as the sampler runs it: clip, momentum, step, noise, failure test, freeze.
void part_update(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  auto z = torch::randn({256, latent}, device), g = torch::randn({256, latent}, device), e = torch::randn({256}, device);
  auto velocity = torch::zeros_like(z);
  auto failed = torch::zeros({256}, torch::TensorOptions(device).dtype(torch::kBool));
  for (auto _ : state) {
    auto gc = g * ((clip / (g.norm(2, 1) + 1e-12)).clamp_max(1.0)).unsqueeze(1);
    velocity.mul_(momentum).add_(gc);
    auto next = torch::add(z, velocity, -eta);
    next.add_(torch::randn_like(next), sigma);
    failed.logical_or_(next.sum(1).add_(e).mul_(0).ne(0));
    benchmark::DoNotOptimize(settle(torch::where(failed.unsqueeze(1), z, next)));
  }
}
BENCHMARK(part_generator)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(part_encoder)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(part_energy)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(part_update)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

/// Per-step time of the composed sampler at B chains with LibTorch's pool at
/// `torch` threads and OpenBLAS's at `blas` (where it has a pool of its own).
void threads(benchmark::State& state) {
  auto& fx = shared();
  const auto c = conditions(state.range(0));
  const int torch_before = at::get_num_threads();
  const auto blas = tr0n::detail::openblas_api::find();
  const int blas_before = blas.get_num_threads ? blas.get_num_threads() : 0;
  at::set_num_threads(static_cast<int>(state.range(1)));
  if (blas.set_num_threads) blas.set_num_threads(static_cast<int>(state.range(2)));
  tr0n::sampler s(fx.g, fx.f, tr0n::cross_entropy{}, options(), tr0n::init::prior{}, tr0n::constant_step{eta},
                  tr0n::fixed_noise{sigma});
  for (auto _ : state) benchmark::DoNotOptimize(settle(s.sample(c, 1).energy));
  state.counters["ms_per_step"] = benchmark::Counter(static_cast<double>(steps) * 1e-3,
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
  at::set_num_threads(torch_before);
  if (blas.set_num_threads && blas_before > 0) blas.set_num_threads(blas_before);
}
void thread_args(benchmark::internal::Benchmark* b) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::vector<int> counts = cores >= 2 ? std::vector<int>{1, cores} : std::vector<int>{1};
  for (auto n : sizes)
    for (int t : counts)
      for (int p : counts) b->Args({n, t, p});
  b->ArgNames({"B", "torch", "blas"})->Unit(benchmark::kMillisecond)->MinTime(0.3);
}
BENCHMARK(threads)->Apply(thread_args);

/// Translator training throughput at batch size b (pairs per second).
void training(benchmark::State& state) {
  auto& fx = shared();
  const int64_t b = state.range(0), train_steps = 10;
  for (auto _ : state) {
    state.PauseTiming();
    torch::manual_seed(1);
    tr0n::mixture_translator q(tr0n::mixture_translator_options(classes, latent).components(10).hidden(256));
    q->to(device);
    state.ResumeTiming();
    benchmark::DoNotOptimize(tr0n::train_translator(q, fx.g, fx.f,
                                                    tr0n::translator_training_options().steps(train_steps).batch_size(b).seed(0))
                                 .losses.sum()
                                 .item<double>());
  }
  state.counters["pairs_per_s"] =
      benchmark::Counter(static_cast<double>(b * train_steps), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(training)->RangeMultiplier(4)->Range(64, 4096)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();

/// Console output as usual, then the overhead ratios and the parts' shares.
class summary_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) times_[r.run_name.function_name] = r.GetAdjustedRealTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    for (const auto& [name, r] : ratios())
      std::printf("ratio tr0n / handwritten, %-20s ratio of medians %.3f; median of %zu paired ratios %.3f "
                  "(95%% interval %.3f to %.3f)\n",
                  name.c_str(), r.ratio_of_medians, r.pairs, r.median_ratio, r.low, r.high);
    double sum = 0;
    const char* parts[] = {"part_generator", "part_encoder", "part_energy", "part_update"};
    for (const char* p : parts)
      if (times_.count(p)) sum += times_[p];
    if (sum > 0)
      for (const char* p : parts)
        if (times_.count(p)) std::printf("share of a step at B = 256: %-10s %5.1f%%\n", p + 5, 100 * times_[p] / sum);
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  // Every configuration, and the Python baseline, with large blocks kept in the heap
  // (tr0n/runtime/allocator.hpp): otherwise glibc's moving mmap threshold makes a batched
  // run one or two times as slow from one run to the next.
  const bool heap = tr0n::keep_large_blocks();
  std::printf("heap: %s\n", heap ? "large blocks kept (glibc mmap threshold 32 MiB, trim 256 MiB)" : "the C library's default");
  // The programs' thread policy (tr0n/runtime/threads.hpp); both pools are printed.
  const auto config = tr0n::configure_threads(0);
  std::printf("%s; device %s\n", config.describe().c_str(), device.str().c_str());
  benchmark::Initialize(&argc, argv);
  summary_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
