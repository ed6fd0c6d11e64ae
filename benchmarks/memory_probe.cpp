// Peak resident memory of sampling on the Fashion-MNIST job's models, one
// configuration per process (peak memory cannot be measured side by side):
//
//   memory_probe SAMPLES MAX_BATCH keep|stream
//
// `keep` runs `sample` (every result kept, x included); `stream` runs
// `sample_chunks`, which hands each chunk's x to a consumer (here: the mean
// pixel per class, so the work is not optimised away) and keeps z, energy and
// ok. Translator start, T = 10, the job's dynamics. Prints one line:
// samples, max_batch, mode, peak RSS in MB, seconds.
// benchmarks/memory_table.sh runs the table of benchmarks/README.md.
#include "fashion_models.hpp"

#include <tr0n/runtime/threads.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4 || (std::string(argv[3]) != "keep" && std::string(argv[3]) != "stream")) {
    std::fprintf(stderr, "usage: memory_probe SAMPLES MAX_BATCH keep|stream\n");
    return 2;
  }
  const int64_t samples = std::atoll(argv[1]), max_batch = std::atoll(argv[2]);
  const bool keep = std::string(argv[3]) == "keep";
  tr0n::configure_threads(0);
  auto& m = bench::shared();
  if (!m.missing.empty()) {
    std::fprintf(stderr, "memory_probe: missing %s: run the Fashion-MNIST main job first (README)\n", m.missing.c_str());
    return 2;
  }
  const auto energy = 20.0 * tr0n::cross_entropy{} + 1.0 * tr0n::latent_prior{};
  tr0n::sampler s(m.generator(), m.aux, energy, m.translator,
                  tr0n::sampler_options().steps(10).grad_clip(200).max_batch(max_batch).seed(7),
                  tr0n::init::translator_sample{}, tr0n::constant_step{0.005}, tr0n::langevin_noise{});
  const auto conditions = tr0n::one_hot_conditions(torch::arange(bench::classes), bench::classes);
  const int64_t per_class = samples / bench::classes;
  const auto start = std::chrono::steady_clock::now();
  double check = 0;
  if (keep) {
    check = s.sample(conditions, per_class).x.mean().item<double>();
  } else {
    auto sums = torch::zeros({bench::classes});
    s.sample_chunks(conditions, per_class, [&](const tr0n::sample_chunk& k) {
      const auto labels = (torch::arange(k.first, k.first + k.x.size(0)) / per_class).to(torch::kLong);
      sums.index_add_(0, labels, k.x.flatten(1).mean(1));
    });
    check = sums.sum().item<double>();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%lld %lld %s %.0f %.1f (check %.3f)\n", static_cast<long long>(samples), static_cast<long long>(max_batch),
              keep ? "keep" : "stream", static_cast<double>(usage.ru_maxrss) / 1024.0, seconds, check);
}
