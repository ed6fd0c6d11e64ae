// The real-size zoo (scripts/export-zoo.py) through the library: seconds per
// Langevin step and peak resident memory of a StyleGAN2-like generator (256
// pixels, output in [-1, 1]) under CLIP ViT-B/32's image tower (resized to 224,
// CLIP's normalisation), one configuration per process:
//
//   zoo_probe ZOO_DIR CHAINS STEPS fp32|bf16
//
// All CHAINS chains in one batch (no chunking), the prior start, the cosine
// energy to a random unit condition. It runs 0 steps (the start and the final
// evaluation) twice, the first as a warm-up, then STEPS steps, in one process, and prints one line: chains,
// precision, seconds per step ((t_STEPS - t_0) / STEPS), peak RSS in MB
// (`ru_maxrss`). benchmarks/zoo_table.sh runs the table of benchmarks/README.md.
#include <tr0n.hpp>
#include <tr0n/adapters/preprocess.hpp>
#include <tr0n/adapters/torchscript.hpp>
#include <tr0n/runtime/allocator.hpp>
#include <tr0n/runtime/threads.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 5 || (std::string(argv[4]) != "fp32" && std::string(argv[4]) != "bf16")) {
    std::fprintf(stderr, "usage: zoo_probe ZOO_DIR CHAINS STEPS fp32|bf16\n");
    return 2;
  }
  const std::string zoo = argv[1];
  const int64_t chains = std::atoll(argv[2]), steps = std::atoll(argv[3]);
  const auto precision = std::string(argv[4]) == "bf16" ? tr0n::precision::bf16 : tr0n::precision::fp32;
  tr0n::keep_large_blocks();
  tr0n::configure_threads(0, tr0n::workload_for(precision, torch::kCPU));
  tr0n::rescaled_generator g(tr0n::torchscript_generator(zoo + "/stylegan.pt", tr0n::standard_normal(512)), -1.0, 1.0);
  const auto options = tr0n::preprocess_options::clip().size(224);
  const auto example = (g.base().example_output() + 1) / 2;
  tr0n::preprocessed_encoder f(tr0n::torchscript_encoder(zoo + "/clip_image.pt", tr0n::preprocess_images(options, example)),
                               options);
  torch::manual_seed(0);
  auto condition = torch::randn({1, 512});
  condition = condition / condition.norm(2, 1, true);
  auto run = [&](int64_t t) {
    tr0n::sampler s(g, f, tr0n::neg_cosine{}, tr0n::sampler_options().steps(t).seed(1).precision(precision),
                    tr0n::init::prior{}, tr0n::constant_step{1.0}, tr0n::fixed_noise{0.01});
    const auto start = std::chrono::steady_clock::now();
    const auto r = s.sample(condition, chains);
    if (!r.ok.all().item().toBool()) std::fprintf(stderr, "zoo_probe: a chain failed\n");
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  run(0);  // first use: the precision's weight copy, and the TorchScript executor's profiling runs
  const double t0 = run(0), t = run(steps);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%lld %s %.2f %.0f\n", static_cast<long long>(chains), argv[4], (t - t0) / static_cast<double>(steps),
              static_cast<double>(usage.ru_maxrss) / 1024.0);
}
