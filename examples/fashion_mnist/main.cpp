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
#include <fashion/image_grid.hpp>
#include <fashion/metrics.hpp>
#include <fashion/plot.hpp>
#include <fashion/pretrained.hpp>

#include <tr0n/io/tensor_file.hpp>
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

using fashion::seconds_since;

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

constexpr int64_t classes = 10;

void add_flags(CLI::App& app, config& cfg) {
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
}

/// `--score`: loads the evaluation classifier and rates the file; 2 on failure.
int score_mode(const config& cfg, const fashion::model_cache& cache) {
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

/// 4. The translator, trained zero-shot on (z, softmax(f(G(z)))) pairs (no
/// images), or loaded from the cache.
template <class G>
tr0n::mixture_translator translator_for(const config& cfg, const fashion::model_cache& cache, G& generator,
                                        fashion::mlp_classifier& aux) {
  torch::manual_seed(cfg.seed + 2);
  tr0n::mixture_translator translator(tr0n::mixture_translator_options(classes, cfg.sizes.latent_dim)
                                          .components(cfg.components)
                                          .hidden(256)
                                          .transform(tr0n::condition_transform::softmax));
  const auto translator_name = "translator_softmax_k" + std::to_string(cfg.components) + "_noise" +
                               std::to_string(static_cast<int>(std::lround(cfg.condition_noise * 1000)));
  fashion::load_or_train_translator(translator, cache.path(translator_name), "translator (zero-shot)", generator, aux,
                                    cfg.translator_steps, cfg.condition_noise, cfg.seed + 3);
  return translator;
}

/// The real-data floor: the evaluation CNN's and f's accuracy on the test set,
/// the Fréchet distance between its halves, and its diversity.
json real_data_metrics(const fashion::split& test, fashion::cnn_classifier& judge, fashion::mlp_classifier& aux,
                       const torch::Tensor& test_features) {
  const auto half = test.images.size(0) / 2;
  json real{{"accuracy", fashion::accuracy(judge, test.images, test.labels)},
            {"aux_accuracy", fashion::accuracy(aux, test.images, test.labels)},
            {"frechet_distance",
             fashion::frechet_distance(test_features.narrow(0, 0, half), test_features.narrow(0, half, half))},
            {"diversity", fashion::within_class_diversity(test.images, test.labels, classes)}};
  std::printf("real test data: eval accuracy %.4f, aux accuracy %.4f, FD(half, half) %.3f, diversity %.3f\n",
              real["accuracy"].get<double>(), real["aux_accuracy"].get<double>(),
              real["frechet_distance"].get<double>(), real["diversity"].get<double>());
  return real;
}

/// 5. Sampling: one-hot class conditions and the cross-entropy energy, for every method asked.
template <class G>
std::vector<method_row> run_methods(const config& cfg, G& generator, fashion::mlp_classifier& aux,
                                    tr0n::mixture_translator& translator, int64_t short_t) {
  const std::set<std::string> methods(cfg.methods.begin(), cfg.methods.end());
  const auto compute = tr0n::parse_precision(cfg.precision);
  auto conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  const tr0n::constant_step schedule{cfg.step_size};
  const auto energy = cfg.beta * tr0n::cross_entropy{} + 1.0 * tr0n::latent_prior{};
  std::vector<method_row> rows;
  auto run_with = [&](std::string method, auto init, int64_t steps, tr0n::sampler_options options,
                      auto noise_policy) {
    tr0n::sampler s(generator, aux, energy, translator, options.steps(steps), init, schedule, noise_policy);
    const auto start = std::chrono::steady_clock::now();
    auto r = s.sample(conditions, cfg.samples_per_class,
                      tr0n::progress_bar(method).every(std::max<int64_t>(1, steps / 20)).show_value(false));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows.push_back({std::move(method), std::string(decltype(init)::name), steps, std::move(r), secs});
  };
  const auto job_options =
      tr0n::sampler_options().momentum(cfg.momentum).grad_clip(cfg.grad_clip).seed(cfg.seed + 7).precision(compute);
  auto run = [&](std::string method, auto init, int64_t steps) {
    run_with(std::move(method), init, steps, job_options, tr0n::langevin_noise{});
  };
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
  return rows;
}

/// 6. Each method's scores as a table line and a JSON row, and its image grid
/// (the TR0N row at `short_t` steps is also samples.png).
template <class Features>
json score_methods(const config& cfg, std::vector<method_row>& rows, fashion::cnn_classifier& judge,
                   const torch::Tensor& test_features, Features&& features_of, int64_t short_t) {
  const int64_t n = cfg.samples_per_class;
  const auto requested = torch::arange(classes).repeat_interleave(n);
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
  return out_rows;
}

/// metrics.json, and the table as a picture: accuracy and Fréchet distance
/// against gradient evaluations, one line per start.
void write_metrics(const config& cfg, const json& real, const json& out_rows, double train_seconds,
                   double total_seconds) {
  json metrics{{"real", real},
               {"rows", out_rows},
               {"samples_per_class", cfg.samples_per_class},
               {"grid_rows", fashion::class_names},
               {"quick", cfg.quick},
               {"precision", cfg.precision},
               {"seconds", {{"models", train_seconds}, {"total", total_seconds}}}};
  tr0n::write_file_atomically((cfg.out / "metrics.json").string(), metrics.dump(2) + "\n");
  const auto start_of = [](const json& row) { return row.at("init").get<std::string>(); };
  fashion::write_svg_plot((cfg.out / "metrics.svg").string(), "Fashion-MNIST, class-conditional (metrics.json)",
                          {{"evaluation accuracy", fashion::series_of(out_rows, "eval_accuracy", start_of)},
                           {"Fréchet distance", fashion::series_of(out_rows, "frechet_distance", start_of), true}});
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  CLI::App app{"TR0N on Fashion-MNIST: an unconditional VAE made class-conditional, zero-shot"};
  add_flags(app, cfg);
  CLI11_PARSE(app, argc, argv);

  // bfloat16 products run on LibTorch's pool (oneDNN), not OpenBLAS's.
  const auto threads = tr0n::configure_threads(cfg.threads, tr0n::workload_for(tr0n::parse_precision(cfg.precision)));
  std::fprintf(stderr, "fashion_mnist: %s\n", threads.describe().c_str());
  const fashion::model_cache cache{cfg.models_dir, cfg.quick ? "quick_" : ""};
  if (!cfg.score.empty()) return score_mode(cfg, cache);
  if (cfg.quick) {
    cfg.sizes = fashion::model_sizes::quick();
    cfg.translator_steps = 800;
  }
  const int64_t short_t = fashion::sort_steps(cfg.steps);

  // 1-3. The unconditional generator (a VAE trained on images only), the
  // auxiliary classifier f, and the independent evaluation CNN (scores only).
  auto job = fashion::start_job(cfg.data_dir, cfg.out, cache, cfg.sizes, cfg.seed, cfg.threads, "fashion_mnist");
  if (!job) return 2;
  const auto& test = job->test;
  const auto total_start = job->clock;
  auto& models = job->models;
  auto generator = models.generator();
  auto translator = translator_for(cfg, cache, generator, models.aux);
  const double train_seconds = seconds_since(total_start);

  // Scoring runs the CNN: its threads go to LibTorch.
  torch::NoGradGuard no_grad_outer;
  std::optional<tr0n::thread_scope> scoring;
  scoring.emplace(cfg.threads, tr0n::thread_workload::convolutions);
  auto features_of = [&](const torch::Tensor& images) {
    return fashion::in_batches(images, [&](const torch::Tensor& x) { return models.judge->features(x); });
  };
  const auto test_features = features_of(test.images);
  const auto real = real_data_metrics(test, models.judge, models.aux, test_features);
  scoring.reset();

  auto rows = run_methods(cfg, generator, models.aux, translator, short_t);
  scoring.emplace(cfg.threads, tr0n::thread_workload::convolutions);
  const auto out_rows = score_methods(cfg, rows, models.judge, test_features, features_of, short_t);
  const double total_seconds = seconds_since(total_start);
  write_metrics(cfg, real, out_rows, train_seconds, total_seconds);
  std::printf("\nwrote %s and %s (%.0f s in all, %.0f s loading or training models)\n",
              (cfg.out / "samples.png").c_str(), (cfg.out / "metrics.json").c_str(), total_seconds, train_seconds);
  return 0;
}
