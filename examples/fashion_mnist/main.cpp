// The main job: make an unconditional Fashion-MNIST VAE class-conditional with
// nothing but a classifier (TR0N, zero-shot), and compare starting Langevin
// dynamics from the prior with starting from the translator.
//
//   fashion_mnist [--models-dir models] [--out out] [--samples-per-class 100]
//                 [--steps 0,10,50,200] [--seed 0] [--methods prior,translator,tr0n,hybrid,best_of]
//                 [--threads N] [--quick]
//   fashion_mnist --score samples.pt --score-labels 0,1,...,9 [--models-dir models] [--quick]
//
// First run trains and caches the VAE, the auxiliary classifier, the
// evaluation classifier and the translator in --models-dir, and writes
// TorchScript copies of the first three there (generator.ts.pt,
// aux_classifier.ts.pt, eval_classifier.ts.pt) for the `tr0n` tool and Python;
// later runs reuse them. Writes --out/samples.png (TR0N, one row per class),
// samples_<method>.png, and --out/metrics.json. --score rates a samples file
// written by `tr0n sample` with the evaluation classifier and prints JSON.
#include "image_grid.hpp"
#include "metrics.hpp"
#include "plot.hpp"
#include "pretrained.hpp"

#include <tr0n/adapters/tensor_file.hpp>
#include <tr0n/runtime/threads.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <tuple>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct config {
  fs::path data_dir = "/usr/share/datasets/fashion-mnist";
  fs::path models_dir = "models";
  fs::path out = "out";
  int64_t samples_per_class = 100;
  std::vector<int64_t> steps{0, 10, 50, 200};
  uint64_t seed = 0;
  std::vector<std::string> methods{"prior", "translator", "tr0n", "hybrid", "best_of"};
  bool quick = false;
  int threads = 0;
  std::string precision = "fp32";  // what G and f compute in while sampling
  std::string score;
  std::vector<int64_t> score_labels;
  // Sizes; --quick shrinks them.
  fashion::model_sizes sizes = fashion::model_sizes::full();
  int64_t translator_steps = 4000;
  int64_t components = 10;
  double condition_noise = 0.1;
  // Exact Langevin dynamics on E = beta * CE(f(G(z)), y) - log p(z) targets
  // p(z) p_f(y | z)^beta: the generator's own class-conditional, sharpened.
  double beta = 20.0, step_size = 0.005, momentum = 0.0, grad_clip = 200.0;
  // The official code's dynamics, for the hybrid row (scripts/run_script_eval_*.sh).
  int64_t official_steps = 100;
  double official_momentum = 0.99, official_noise = 0.01, official_clip = 1.0;
};

/// `--score`: the evaluation classifier's accuracy and the diversity of a
/// samples file from `tr0n sample`, whose conditions were `labels` (each
/// repeated for its samples, condition-major), as one JSON line.
template <class Classifier>
int score_samples(Classifier& judge, const std::string& path, const std::vector<int64_t>& labels) {
  const auto value = torch::pickle_load(tr0n::read_bytes(path));
  if (!value.isGenericDict()) throw std::runtime_error(path + ": expected the dict that `tr0n sample` writes");
  const auto dict = value.toGenericDict();
  const auto x = dict.at("x").toTensor().to(torch::kFloat32), ok = dict.at("ok").toTensor();
  const auto per = x.size(0) / static_cast<int64_t>(labels.size());
  if (labels.empty() || per * static_cast<int64_t>(labels.size()) != x.size(0))
    throw std::runtime_error(path + ": " + std::to_string(x.size(0)) + " samples do not split over " +
                             std::to_string(labels.size()) + " labels");
  const auto requested = torch::tensor(labels, torch::kLong).repeat_interleave(per);
  const double acc = fashion::accuracy(judge, x, requested);
  const json result{{"samples", x.size(0)},
                    {"accuracy", acc},
                    {"correct", std::lround(acc * static_cast<double>(x.size(0)))},
                    {"diversity", fashion::within_class_diversity(x, requested, 10)},
                    {"ok_fraction", ok.to(torch::kFloat64).mean().item<double>()}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

struct method_row {
  std::string method, init;
  int64_t steps;
  tr0n::sample_result result;
  double seconds;
};

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  CLI::App app{"TR0N on Fashion-MNIST: an unconditional VAE made class-conditional, zero-shot"};
  app.add_option("--data-dir", cfg.data_dir, "Folder with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--models-dir", cfg.models_dir, "Where trained models are cached")->capture_default_str();
  app.add_option("--out", cfg.out, "Output folder for samples.png and metrics.json")->capture_default_str();
  app.add_option("--samples-per-class", cfg.samples_per_class, "Samples per class for every method")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--steps", cfg.steps, "Langevin step counts T to compare (comma-separated)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--seed", cfg.seed, "Seed for training and sampling")->capture_default_str();
  app.add_option("--methods", cfg.methods, "Methods: prior, translator, tr0n, hybrid, best_of")
      ->delimiter(',')
      ->check(CLI::IsMember({"prior", "translator", "tr0n", "hybrid", "best_of"}))
      ->capture_default_str();
  app.add_option("--components", cfg.components, "Translator mixture components K")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--condition-noise", cfg.condition_noise,
                 "Std of the Gaussian noise on conditions during translator training")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--beta", cfg.beta, "Inverse temperature of the class term: target p(z) p_f(y | z)^beta")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--step-size", cfg.step_size, "Langevin step size eta (noise sqrt(2 eta))")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--momentum", cfg.momentum, "Momentum on the Langevin gradient")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  app.add_option("--grad-clip", cfg.grad_clip, "Per-sample gradient-norm clipping (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--quick", cfg.quick, "Reduced sizes, for tests (models cached under quick_* names)");
  app.add_option("--threads", cfg.threads, "CPU threads (0: every core), without oversubscribing LibTorch and OpenBLAS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--precision", cfg.precision, "What G and f compute in while sampling: fp32 or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  auto* score = app.add_option("--score", cfg.score, "Rate a samples file from `tr0n sample`, print JSON, and exit");
  app.add_option("--score-labels", cfg.score_labels, "The class labels the scored samples were drawn for")
      ->delimiter(',')
      ->needs(score);
  CLI11_PARSE(app, argc, argv);

  // bfloat16 products run on LibTorch's pool (oneDNN), not OpenBLAS's.
  const auto compute = tr0n::parse_precision(cfg.precision);
  const auto threads = tr0n::configure_threads(cfg.threads, tr0n::workload_for(compute));
  std::fprintf(stderr, "fashion_mnist: %s\n", threads.describe().c_str());
  const fashion::model_cache cache{cfg.models_dir, cfg.quick ? "quick_" : ""};
  if (!cfg.score.empty()) {
    fashion::cnn_classifier judge;
    try {
      if (!fs::exists(cache.path("eval_classifier")))
        throw std::runtime_error(cache.path("eval_classifier").string() + ": not found (run the job first)");
      torch::load(judge, cache.path("eval_classifier").string());
      const tr0n::thread_scope cnn(cfg.threads, tr0n::thread_workload::convolutions);
      return score_samples(judge, cfg.score, cfg.score_labels);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fashion_mnist: %s\n", tr0n::detail::brief(e).c_str());
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.sizes = fashion::model_sizes::quick();
    cfg.translator_steps = 800;
  }
  std::sort(cfg.steps.begin(), cfg.steps.end());
  cfg.steps.erase(std::unique(cfg.steps.begin(), cfg.steps.end()), cfg.steps.end());
  const std::set<std::string> methods(cfg.methods.begin(), cfg.methods.end());
  const int64_t classes = 10, n = cfg.samples_per_class;

  fashion::split train, test;
  try {
    std::tie(train, test) = fashion::load_splits(cfg.data_dir, cfg.sizes.train_images);
  } catch (const fashion::idx_error& e) {
    std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
    return 2;
  }
  fs::create_directories(cfg.out);
  const auto total_start = std::chrono::steady_clock::now();

  // 1-3. The unconditional generator (a VAE trained on images only), the
  // auxiliary classifier f, and the independent evaluation CNN (scores only).
  auto models = fashion::load_pretrained(cache, train, cfg.sizes, cfg.seed, cfg.threads);
  auto generator = models.generator();
  auto& aux = models.aux;
  auto& judge = models.judge;

  // 4. The translator, trained zero-shot on (z, softmax(f(G(z)))) pairs: no images.
  torch::manual_seed(cfg.seed + 2);
  tr0n::mixture_translator translator(tr0n::mixture_translator_options(classes, cfg.sizes.latent_dim)
                                          .components(cfg.components)
                                          .hidden(256)
                                          .transform(tr0n::condition_transform::softmax));
  const auto translator_name = "translator_softmax_k" + std::to_string(cfg.components) + "_noise" +
                               std::to_string(static_cast<int>(std::lround(cfg.condition_noise * 1000)));
  fashion::load_or_train(translator, cache.path(translator_name), "translator (zero-shot)", [&] {
    auto report = tr0n::train_translator(
        translator, generator, aux,
        tr0n::translator_training_options()
            .steps(cfg.translator_steps)
            .batch_size(512)
            .dataset_size(cfg.translator_steps * 64)
            .condition_noise(cfg.condition_noise)
            .seed(cfg.seed + 3),
        tr0n::progress_bar("translator").every(std::max<int64_t>(1, cfg.translator_steps / 50)));
    std::fprintf(stderr, "translator: NLL %.3f, std %.3f to %.3f\n", report.nll(), report.std_min, report.std_max);
    for (const auto& w : report.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  });
  translator->eval();
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - total_start).count();

  // The real-data floor. Scoring runs the CNN: its threads go to LibTorch.
  torch::NoGradGuard no_grad_outer;
  std::optional<tr0n::thread_scope> scoring;
  scoring.emplace(cfg.threads, tr0n::thread_workload::convolutions);
  auto features_of = [&](const torch::Tensor& images) {
    return fashion::in_batches(images, [&](const torch::Tensor& x) { return judge->features(x); });
  };
  auto test_features = features_of(test.images);
  const auto half = test.images.size(0) / 2;
  json real{{"accuracy", fashion::accuracy(judge, test.images, test.labels)},
            {"aux_accuracy", fashion::accuracy(aux, test.images, test.labels)},
            {"frechet_distance",
             fashion::frechet_distance(test_features.narrow(0, 0, half), test_features.narrow(0, half, half))},
            {"diversity", fashion::within_class_diversity(test.images, test.labels, classes)}};
  std::printf("real test data: eval accuracy %.4f, aux accuracy %.4f, FD(half, half) %.3f, diversity %.3f\n",
              real["accuracy"].get<double>(), real["aux_accuracy"].get<double>(),
              real["frechet_distance"].get<double>(), real["diversity"].get<double>());

  scoring.reset();

  // 5. Sampling: one-hot class conditions and the cross-entropy energy.
  auto conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  auto requested = torch::arange(classes).repeat_interleave(n);
  const tr0n::constant_step schedule{cfg.step_size};
  const tr0n::langevin_noise noise{};
  const auto energy = cfg.beta * tr0n::cross_entropy{} + 1.0 * tr0n::latent_prior{};
  std::vector<method_row> rows;
  auto run_with = [&](std::string method, auto init, int64_t steps, tr0n::sampler_options options,
                      auto noise_policy) {
    tr0n::sampler s(generator, aux, energy, translator, options.steps(steps), init, schedule, noise_policy);
    const auto start = std::chrono::steady_clock::now();
    auto r = s.sample(conditions, n, tr0n::progress_bar(method).every(std::max<int64_t>(1, steps / 20)).show_value(false));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows.push_back({std::move(method), std::string(decltype(init)::name), steps, std::move(r), secs});
  };
  const auto job_options =
      tr0n::sampler_options().momentum(cfg.momentum).grad_clip(cfg.grad_clip).seed(cfg.seed + 7).precision(compute);
  auto run = [&](std::string method, auto init, int64_t steps) {
    run_with(std::move(method), init, steps, job_options, noise);
  };
  const int64_t short_t = [&] {
    for (auto t : cfg.steps)
      if (t > 0) return std::min<int64_t>(t, 20);
    return int64_t{10};
  }();
  for (auto t : cfg.steps)
    if (methods.count("prior")) run("prior+T" + std::to_string(t), tr0n::init::prior{}, t);
  if (methods.count("translator")) run("translator only", tr0n::init::translator_sample{}, 0);
  for (auto t : cfg.steps)
    if (methods.count("tr0n") && t > 0) run("tr0n+T" + std::to_string(t), tr0n::init::translator_sample{}, t);
  if (methods.count("hybrid"))  // the official code's start and dynamics
    run_with("hybrid+T" + std::to_string(cfg.official_steps), tr0n::init::translator_mixture{}, cfg.official_steps,
             tr0n::sampler_options()
                 .momentum(cfg.official_momentum)
                 .grad_clip(cfg.official_clip)
                 .seed(cfg.seed + 7)
                 .precision(compute),
             tr0n::fixed_noise{cfg.official_noise});
  if (methods.count("best_of"))
    run("best_of_8+T" + std::to_string(short_t), tr0n::init::best_of<8, tr0n::init::translator_sample>{}, short_t);

  // 6. Scores, table, JSON and images.
  scoring.emplace(cfg.threads, tr0n::thread_workload::convolutions);
  json out_rows = json::array();
  const std::vector<std::string> labels(fashion::class_names.begin(), fashion::class_names.end());
  std::printf("\n%-18s %-18s %5s %9s %9s %9s %9s %6s %10s\n", "method", "init", "T", "eval_acc", "FD", "diversity",
              "energy", "grads", "s/sample");
  for (auto& row : rows) {
    auto& r = row.result;
    auto x = r.x;
    const double acc = fashion::accuracy(judge, x, requested);
    const double fd = fashion::frechet_distance(features_of(x), test_features);
    const double div = fashion::within_class_diversity(x, requested, classes);
    const double energy = r.energy.mean().item<double>();
    const double sps = row.seconds / static_cast<double>(x.size(0));
    std::printf("%-18s %-18s %5lld %9.4f %9.3f %9.3f %9.4f %6lld %10.2e\n", row.method.c_str(), row.init.c_str(),
                static_cast<long long>(row.steps), acc, fd, div, energy, static_cast<long long>(r.grad_evals), sps);
    out_rows.push_back({{"method", row.method},
                        {"init", row.init},
                        {"steps", row.steps},
                        {"eval_accuracy", acc},
                        {"frechet_distance", fd},
                        {"diversity", div},
                        {"mean_energy", energy},
                        {"ok_fraction", r.ok.to(torch::kFloat64).mean().item<double>()},
                        {"grad_evals", r.grad_evals},
                        {"energy_evals", r.energy_evals},
                        {"seconds_per_sample", sps}});
    std::string file = row.method;
    std::replace_if(file.begin(), file.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    fashion::write_grid((cfg.out / ("samples_" + file + ".png")).string(), x, classes, n, 10, labels);
    if (row.init == "translator_sample" && row.steps == short_t)
      fashion::write_grid((cfg.out / "samples.png").string(), x, classes, n, 10, labels);
  }
  const double total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - total_start).count();
  json metrics{{"real", real},
               {"rows", out_rows},
               {"samples_per_class", n},
               {"grid_rows", fashion::class_names},
               {"quick", cfg.quick},
               {"precision", cfg.precision},
               {"seconds", {{"models", train_seconds}, {"total", total_seconds}}}};
  tr0n::write_file_atomically((cfg.out / "metrics.json").string(), metrics.dump(2) + "\n");
  // The table as a picture: accuracy and Fréchet distance against gradient evaluations, one line per start.
  const auto start_of = [](const json& row) { return row.at("init").get<std::string>(); };
  fashion::write_svg_plot((cfg.out / "metrics.svg").string(), "Fashion-MNIST, class-conditional (metrics.json)",
                          {{"evaluation accuracy", fashion::series_of(out_rows, "eval_accuracy", start_of)},
                           {"Fréchet distance", fashion::series_of(out_rows, "frechet_distance", start_of), true}});
  std::printf("\nwrote %s and %s (%.0f s in all, %.0f s loading or training models)\n",
              (cfg.out / "samples.png").c_str(), (cfg.out / "metrics.json").c_str(), total_seconds, train_seconds);
  return 0;
}
