// The paper's text experiment, offline: a small CLIP trained here on
// Fashion-MNIST images and captions generated from their labels and pixels;
// a translator trained only on the CLIP image embeddings of G(z) (with
// condition noise to bridge the modality gap) and then given *text*
// embeddings; Langevin dynamics on the negative cosine. Compared with the
// prior start, a FuseDream-style baseline, the translator alone, TR0N without
// condition noise and the official hybrid start, and scored with metrics that
// do not depend on the energy: the Fashion-MNIST job's evaluation classifier,
// attributes recomputed from the pixels, and the Fréchet distance.
//
//   fashion_text [--models-dir models] [--out out_text] [--samples-per-prompt 10]
//                [--steps 0,10,50,200] [--seed 0] [--threads N] [--quick]
//
// Shares the VAE and the evaluation CNN with the fashion_mnist job (same
// cache, trained by whichever job runs first), and adds clip.pt, the
// TorchScript towers clip_image.ts.pt and clip_text.ts.pt, the vocabulary
// clip_vocab.txt and two translators (the one with condition noise also as
// text_translator.pt, for the tool and `tr0n serve`). Writes --out/text_samples.png (TR0N,
// one row per prompt), samples_<method>.png and --out/metrics.json.
#include <fashion/image_grid.hpp>
#include <fashion/metrics.hpp>
#include <fashion/plot.hpp>
#include <fashion/pretrained.hpp>
#include <fashion/captions.hpp>
#include <fashion/clip.hpp>

#include <tr0n/runtime/threads.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;
namespace ft = fashion_text;

namespace {

using fashion::seconds_since;

struct config {
  fs::path data_dir = "/usr/share/datasets/fashion-mnist";
  fs::path models_dir = "models";
  fs::path out = "out_text";
  int64_t per_prompt = 10;
  std::vector<int64_t> steps{0, 10, 50, 200};
  std::vector<std::string> methods{"prior", "fusedream", "translator", "tr0n", "tr0n_no_noise", "hybrid"};
  uint64_t seed = 0;
  int threads = 0;
  bool quick = false;
  fashion::model_sizes sizes = fashion::model_sizes::full();
  int64_t clip_dim = 64, clip_epochs = 8, clip_batch = 512;
  int64_t translator_steps = 4000, components = 10;
  // Condition noise std per dimension; negative: derived from the measured
  // modality gap (see main).
  double condition_noise = -1;
  // Dynamics shared by every method (the hybrid row keeps the official ones).
  double beta = 50, step_size = 0.01, noise_std = 0.01;
  int64_t fusedream_candidates = 16, augment_copies = 2;
  // The official text evaluation (scripts/run_script_eval_*.sh): the augmented
  // cosine alone, SGLD with lr 0.1, momentum 0.99, noise 0.01, 100 iterations.
  int64_t official_steps = 100;
  double official_step = 0.1, official_momentum = 0.99, official_noise = 0.01, official_clip = 1.0;
};

/// One prompt: its text, class, and the attribute it names (-1: none) with its value.
struct prompt {
  std::string text;
  int64_t label, attribute = -1, value = 0;
};

std::vector<prompt> make_prompts() {
  std::vector<prompt> out;
  for (int64_t k = 0; k < ft::classes; ++k) out.push_back({ft::caption(0, k, 0, 0), k});
  for (int64_t k = 0; k < ft::classes; ++k)
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t v = 1; v < 3; ++v)
        out.push_back({ft::caption(0, k, a == 0 ? v : 0, a == 1 ? v : 0), k, a, v});
  return out;
}

struct method_row {
  std::string method, init;
  int64_t steps;
  double noise;
  tr0n::sample_result result;
  double seconds;
};

void add_flags(CLI::App& app, config& cfg) {
  app.add_option("--data-dir", cfg.data_dir, "Folder with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--models-dir", cfg.models_dir, "Where trained models are cached")->capture_default_str();
  app.add_option("--out", cfg.out, "Output folder")->capture_default_str();
  app.add_option("--samples-per-prompt", cfg.per_prompt, "Samples per prompt for every method")
      ->check(CLI::Range(int64_t{2}, int64_t{10000}))
      ->capture_default_str();
  app.add_option("--steps", cfg.steps, "Langevin step counts T to compare (comma-separated)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--methods", cfg.methods, "Methods: prior, fusedream, translator, tr0n, tr0n_no_noise, hybrid")
      ->delimiter(',')
      ->check(CLI::IsMember({"prior", "fusedream", "translator", "tr0n", "tr0n_no_noise", "hybrid"}))
      ->capture_default_str();
  app.add_option("--seed", cfg.seed, "Seed for training and sampling")->capture_default_str();
  app.add_option("--condition-noise", cfg.condition_noise,
                 "Std of the condition noise in translator training (negative: from the measured modality gap)")
      ->capture_default_str();
  app.add_option("--beta", cfg.beta, "Inverse temperature of the cosine term: E = -beta cos - log p(z)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--step-size", cfg.step_size, "Langevin step size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--noise-std", cfg.noise_std, "Langevin noise std per step")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--threads", cfg.threads, "CPU threads (0: every core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--quick", cfg.quick, "Reduced sizes, for tests (models cached under quick_* names)");
}

/// 2. Attributes from pixels; thresholds are the training images' within-class terciles.
struct attribute_table {
  torch::Tensor thresholds, train, test;
};
attribute_table measure_attributes(const fashion::split& train, const fashion::split& test) {
  const auto train_measures = ft::attribute_measures(train.images);
  attribute_table a;
  a.thresholds = ft::tercile_thresholds(train_measures, train.labels);
  a.train = ft::attribute_values(train_measures, train.labels, a.thresholds);
  a.test = ft::attribute_values(ft::attribute_measures(test.images), test.labels, a.thresholds);
  return a;
}

/// 3. The small CLIP, trained on images and generated captions: all training
/// images but a validation split (the last tenth), held out of its training.
ft::clip clip_for(const config& cfg, const fashion::model_cache& cache, const fashion::split& train,
                  const attribute_table& attributes) {
  const int64_t n_fit = train.images.size(0) - train.images.size(0) / 10;
  const fashion::split fit{train.images.narrow(0, 0, n_fit), train.labels.narrow(0, 0, n_fit)};
  torch::manual_seed(cfg.seed + 20);
  ft::clip clip(cfg.clip_dim);
  fashion::load_or_train(clip, cache.path("clip_fit90"), "small CLIP (image and text towers)", [&] {
    ft::train_clip(clip, fit, attributes.train.narrow(0, 0, n_fit), cfg.clip_epochs, cfg.clip_batch, 2e-3);
  });
  clip->eval();
  for (auto& p : clip->parameters()) p.requires_grad_(false);
  if (!fs::exists(cache.script_path("clip_image"))) ft::export_image_tower(clip->image, cache.script_path("clip_image"));
  if (!fs::exists(cache.script_path("clip_text"))) ft::export_text_tower(clip->text, cache.script_path("clip_text"));
  return clip;
}

/// The CLIP's zero-shot test accuracy, and the modality gap on the validation
/// split (matched image-text cosines against image-image cosines), which sets
/// the condition noise: no test image or label chooses a hyperparameter.
struct clip_report {
  double zero_shot, matched, same_class, all_pairs, centroid_gap;
  int64_t validation_images;
  json to_json(int64_t dim) const {
    return {{"zero_shot_accuracy", zero_shot},
            {"modality_gap",
             {{"measured_on", "validation split: the last tenth of the training images, held out of the CLIP's training"},
              {"validation_images", validation_images},
              {"matched_image_text_cosine", matched},
              {"image_image_cosine_same_class", same_class},
              {"image_image_cosine_all", all_pairs},
              {"centroid_distance", centroid_gap}}},
            {"dim", dim}};
  }
};
clip_report measure_clip(const fashion::split& train, const fashion::split& test, const torch::Tensor& class_text,
                         const std::function<torch::Tensor(const torch::Tensor&)>& embed_images) {
  const int64_t n_val = train.images.size(0) / 10, n_fit = train.images.size(0) - n_val;
  const fashion::split validation{train.images.narrow(0, n_fit, n_val), train.labels.narrow(0, n_fit, n_val)};
  clip_report r{};
  r.validation_images = n_val;
  r.zero_shot =
      (embed_images(test.images).matmul(class_text.t()).argmax(1) == test.labels).to(torch::kFloat64).mean().item<double>();
  const auto val_emb = embed_images(validation.images);
  r.matched = (val_emb * class_text.index_select(0, validation.labels)).sum(1).mean().item<double>();
  auto mean_pair_cosine = [](const torch::Tensor& e) {  // mean over distinct pairs
    const auto n = static_cast<double>(e.size(0));
    return ((e.sum(0).pow(2).sum() - n).item<double>()) / (n * (n - 1));
  };
  r.same_class = 0;
  for (int64_t k = 0; k < ft::classes; ++k) r.same_class += mean_pair_cosine(val_emb.index({validation.labels == k}));
  r.same_class /= ft::classes;
  r.all_pairs = mean_pair_cosine(val_emb);
  r.centroid_gap = (val_emb.mean(0) - class_text.mean(0)).norm().item<double>();
  std::printf("small CLIP: zero-shot test accuracy %.4f; on the validation split: cosine image-text (matched) %.3f, "
              "image-image (same class) "
              "%.3f, image-image (all) %.3f; centroid distance %.3f\n",
              r.zero_shot, r.matched, r.same_class, r.all_pairs, r.centroid_gap);
  return r;
}

/// 4. A translator on l2-normalised image embeddings of G(z), trained with
/// condition noise `sigma` (or loaded); the one with noise is also written
/// under a fixed name, for the tool and `tr0n serve`.
template <class G>
tr0n::mixture_translator text_translator(const config& cfg, const fashion::model_cache& cache, G& generator,
                                         ft::image_encoder& encoder, double sigma, uint64_t seed) {
  torch::manual_seed(seed);
  tr0n::mixture_translator q(tr0n::mixture_translator_options(cfg.clip_dim, cfg.sizes.latent_dim)
                                 .components(cfg.components)
                                 .hidden(256)
                                 .transform(tr0n::condition_transform::l2));
  const auto name = "text_translator_l2_k" + std::to_string(cfg.components) + "_noise" +
                    std::to_string(static_cast<int>(std::lround(sigma * 1000)));
  fashion::load_or_train_translator(q, cache.path(name), "translator on CLIP image embeddings, noise " + std::to_string(sigma),
                                    generator, encoder, cfg.translator_steps, sigma, seed + 1);
  if (sigma > 0) fs::copy_file(cache.path(name), cache.path("text_translator"), fs::copy_options::overwrite_existing);
  return q;
}

/// 5. The prompts, each repeated for its samples: labels, asked attribute and value per sample.
struct prompt_set {
  std::vector<prompt> prompts = make_prompts();
  std::vector<std::string> texts;
  torch::Tensor ids, labels, asked_attribute, asked_value;
  explicit prompt_set(int64_t n) {
    std::vector<int64_t> label_list, attribute_list, value_list;
    for (const auto& p : prompts) {
      texts.push_back(p.text);
      label_list.push_back(p.label);
      attribute_list.push_back(p.attribute);
      value_list.push_back(p.value);
    }
    ids = torch::arange(count()).repeat_interleave(n);
    labels = torch::tensor(label_list).index_select(0, ids);
    asked_attribute = torch::tensor(attribute_list).index_select(0, ids);
    asked_value = torch::tensor(value_list).index_select(0, ids);
  }
  int64_t count() const { return static_cast<int64_t>(prompts.size()); }
  /// How often `values` (attributes of images labelled `value_labels`) have the
  /// value an attribute prompt names, averaged over the attribute prompts.
  double rate_in(const torch::Tensor& values, const torch::Tensor& value_labels) const {
    double total = 0;
    int64_t counted = 0;
    for (const auto& p : prompts) {
      if (p.attribute < 0) continue;
      auto of_class = values.index({value_labels == p.label}).select(1, p.attribute);
      if (of_class.numel() == 0) continue;
      total += (of_class == p.value).to(torch::kFloat64).mean().item<double>();
      ++counted;
    }
    return counted ? total / static_cast<double>(counted) : 0.0;
  }
};

std::string label(const char* m, int64_t t) { return std::string(m) + "+T" + std::to_string(t); }

/// Every method on every prompt; `short_t` is the step count of the single-T rows.
template <class G>
std::vector<method_row> run_methods(const config& cfg, G& generator, ft::image_encoder& encoder,
                                    tr0n::mixture_translator& translator, tr0n::mixture_translator& translator_no_noise,
                                    double noise, const torch::Tensor& conditions, int64_t short_t) {
  using tr0n::operator*;
  using tr0n::operator+;
  const std::set<std::string> methods(cfg.methods.begin(), cfg.methods.end());
  const auto energy = cfg.beta * tr0n::neg_cosine{} + 1.0 * tr0n::latent_prior{};
  const auto augmented =
      cfg.beta * tr0n::augmented_neg_cosine<>{.copies = cfg.augment_copies} + 1.0 * tr0n::latent_prior{};
  const tr0n::constant_step schedule{cfg.step_size};
  const tr0n::fixed_noise langevin{cfg.noise_std};
  const auto options = tr0n::sampler_options().seed(cfg.seed + 7);
  std::vector<method_row> rows;
  auto run = [&](std::string method, auto& q, const auto& e, auto init, int64_t steps, tr0n::sampler_options o,
                 auto step_schedule, auto noise_policy, double trained_noise) {
    torch::AutoGradMode grad(true);
    tr0n::sampler s(generator, encoder, e, q, o.steps(steps), init, step_schedule, noise_policy);
    const auto start = std::chrono::steady_clock::now();
    auto r = s.sample(conditions, cfg.per_prompt,
                      tr0n::progress_bar(method).every(std::max<int64_t>(1, steps / 20)).show_value(false));
    rows.push_back({std::move(method), std::string(decltype(init)::name), steps, trained_noise, std::move(r),
                    seconds_since(start)});
  };
  const tr0n::init::translator_sample sample{};
  for (auto t : cfg.steps)
    if (methods.count("prior")) run(label("prior", t), translator, energy, tr0n::init::prior{}, t, options, schedule, langevin, 0);
  // FuseDream-style: the best of N prior draws by (augmented) cosine, then optimisation of the augmented cosine.
  for (auto t : cfg.steps)
    if (methods.count("fusedream"))
      run(label("fusedream", t), translator, augmented,
          tr0n::init::best_of<16, tr0n::init::prior>{.candidates = cfg.fusedream_candidates}, t, options, schedule,
          langevin, 0);
  if (methods.count("translator")) run("translator only", translator, energy, sample, 0, options, schedule, langevin, noise);
  for (auto t : cfg.steps)
    if (methods.count("tr0n") && t > 0) run(label("tr0n", t), translator, energy, sample, t, options, schedule, langevin, noise);
  if (methods.count("tr0n"))  // the same start and steps on the augmented cosine
    run(label("tr0n augmented", short_t), translator, augmented, sample, short_t, options, schedule, langevin, noise);
  if (methods.count("tr0n_no_noise")) {
    run("translator only, no noise", translator_no_noise, energy, sample, 0, options, schedule, langevin, 0);
    run(label("tr0n no noise", short_t), translator_no_noise, energy, sample, short_t, options, schedule, langevin, 0);
  }
  if (methods.count("hybrid"))  // the official code's start, energy and dynamics
    run(label("hybrid", cfg.official_steps), translator, tr0n::augmented_neg_cosine<>{.copies = cfg.augment_copies},
        tr0n::init::translator_mixture{}, cfg.official_steps,
        tr0n::sampler_options().momentum(cfg.official_momentum).grad_clip(cfg.official_clip).seed(cfg.seed + 7),
        tr0n::constant_step{cfg.official_step}, tr0n::fixed_noise{cfg.official_noise}, noise);
  return rows;
}

/// 6. Scores that do not depend on the energy, per method: a table line, a JSON
/// row and an image grid (the TR0N row at `short_t` steps is also text_samples.png).
struct scorer {
  const config& cfg;
  const prompt_set& prompts;
  const attribute_table& attributes;
  fashion::cnn_classifier& judge;
  std::function<torch::Tensor(const torch::Tensor&)> features_of, embed_images;
  torch::Tensor test_features, conditions;

  json score(const method_row& row) const {
    const auto& x = row.result.x;
    const auto is_class_prompt = prompts.asked_attribute < 0, is_attribute_prompt = prompts.asked_attribute >= 0;
    auto predicted = fashion::in_batches(x, [&](const torch::Tensor& b) { return judge->forward(b).argmax(1); });
    auto correct = (predicted == prompts.labels).to(torch::kFloat64);
    const auto values = ft::attribute_values(ft::attribute_measures(x), prompts.labels, attributes.thresholds);
    auto agree = values.gather(1, prompts.asked_attribute.clamp_min(0).unsqueeze(1)).squeeze(1) == prompts.asked_value;
    const double sps = row.seconds / static_cast<double>(x.size(0));
    const json out{{"method", row.method},
                   {"init", row.init},
                   {"steps", row.steps},
                   {"noise", row.noise},
                   {"class_accuracy", correct.index({is_class_prompt}).mean().item<double>()},
                   {"class_accuracy_attribute_prompts", correct.index({is_attribute_prompt}).mean().item<double>()},
                   {"attribute_agreement", agree.index({is_attribute_prompt}).to(torch::kFloat64).mean().item<double>()},
                   // The same method's class-prompt samples: how often they have the value unasked.
                   {"attribute_base_rate",
                    prompts.rate_in(values.index({is_class_prompt}), prompts.labels.index({is_class_prompt}))},
                   {"frechet_distance", fashion::frechet_distance(features_of(x), test_features)},
                   {"diversity", fashion::within_class_diversity(x, prompts.ids, prompts.count())},
                   {"clip_cosine",
                    (embed_images(x) * conditions.index_select(0, prompts.ids)).sum(1).mean().item<double>()},
                   {"ok_fraction", row.result.ok.to(torch::kFloat64).mean().item<double>()},
                   {"grad_evals", row.result.grad_evals},
                   {"energy_evals", row.result.energy_evals},
                   {"seconds_per_sample", sps}};
    std::printf("%-26s %-18s %4lld %6.3f %9.4f %9.4f %8.4f %7.2f %9.3f %7.4f %6lld %10.2e\n", row.method.c_str(),
                row.init.c_str(), static_cast<long long>(row.steps), row.noise, out["class_accuracy"].get<double>(),
                out["attribute_agreement"].get<double>(), out["attribute_base_rate"].get<double>(),
                out["frechet_distance"].get<double>(), out["diversity"].get<double>(), out["clip_cosine"].get<double>(),
                static_cast<long long>(row.result.grad_evals), sps);
    return out;
  }

  json score_all(const std::vector<method_row>& rows, int64_t short_t) const {
    json out_rows = json::array();
    std::printf("\n%-26s %-18s %4s %6s %9s %9s %8s %7s %9s %7s %6s %10s\n", "method", "init", "T", "noise",
                "class_acc", "attr_agr", "attr_base", "FD", "diversity", "cosine", "grads", "s/sample");
    for (const auto& row : rows) {
      out_rows.push_back(score(row));
      std::string file = row.method;
      std::replace_if(file.begin(), file.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
      const auto& x = row.result.x;
      fashion::write_grid((cfg.out / ("samples_" + file + ".png")).string(), x, prompts.count(), cfg.per_prompt, 10,
                          prompts.texts, 200);
      if (row.method == label("tr0n", short_t))
        fashion::write_grid((cfg.out / "text_samples.png").string(), x, prompts.count(), cfg.per_prompt, 10,
                            prompts.texts, 200);
    }
    return out_rows;
  }
};

/// The real test images' scores: evaluation accuracy, the attribute chance
/// (within-class tercile rate) and the Fréchet distance between halves.
json real_scores(const fashion::split& test, const scorer& sc) {
  const auto& f = sc.test_features;
  const double chance = sc.prompts.rate_in(sc.attributes.test, test.labels);
  const json real{{"eval_accuracy", fashion::accuracy(sc.judge, test.images, test.labels)},
                  {"attribute_chance", chance},
                  {"frechet_distance", fashion::frechet_distance(f.narrow(0, 0, f.size(0) / 2),
                                                                 f.narrow(0, f.size(0) / 2, f.size(0) / 2))}};
  std::printf("real test images: eval accuracy %.4f; attribute chance (within-class tercile rate) %.3f\n",
              real["eval_accuracy"].get<double>(), chance);
  return real;
}

/// metrics.json, and the table as a picture: class accuracy and Fréchet
/// distance against gradient evaluations, one line per start (the translator
/// alone is each translator's T = 0 point).
void write_metrics(const config& cfg, json metrics, const json& out_rows) {
  tr0n::write_file_atomically((cfg.out / "metrics.json").string(), metrics.dump(2) + "\n");
  const auto start_of = [](const json& row) {
    auto method = row.at("method").get<std::string>();
    method = method.substr(0, method.find("+T"));
    return method == "translator only" ? std::string("tr0n")
           : method == "translator only, no noise" ? std::string("tr0n no noise") : method;
  };
  fashion::write_svg_plot((cfg.out / "metrics.svg").string(), "Fashion-MNIST from text prompts (metrics.json)",
                          {{"class accuracy", fashion::series_of(out_rows, "class_accuracy", start_of)},
                           {"Fréchet distance", fashion::series_of(out_rows, "frechet_distance", start_of), true}});
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  CLI::App app{"TR0N on text, offline: a small CLIP trained here, prompts become Fashion-MNIST images"};
  add_flags(app, cfg);
  CLI11_PARSE(app, argc, argv);
  const auto threads = tr0n::configure_threads(cfg.threads);
  std::fprintf(stderr, "fashion_text: %s\n", threads.describe().c_str());
  if (cfg.quick) {
    cfg.sizes = fashion::model_sizes::quick();
    cfg.clip_epochs = 6;
    cfg.translator_steps = 800;
  }
  const int64_t short_t = fashion::sort_steps(cfg.steps);
  const fashion::model_cache cache{cfg.models_dir, cfg.quick ? "quick_" : ""};
  // 1. The shared generator and evaluation classifier; 2. attributes; 3. the small CLIP.
  auto job = fashion::start_job(cfg.data_dir, cfg.out, cache, cfg.sizes, cfg.seed, cfg.threads, "fashion_text");
  if (!job) return 2;
  const auto &train = job->train, &test = job->test;
  const auto total_start = job->clock;
  auto& models = job->models;
  auto generator = models.generator();
  const auto attributes = measure_attributes(train, test);
  const auto tokenizer = ft::tokenizer();
  tokenizer.write((cfg.models_dir / (cache.prefix + "clip_vocab.txt")).string());
  std::optional<tr0n::thread_scope> cnn_threads;
  cnn_threads.emplace(cfg.threads, tr0n::thread_workload::convolutions);
  auto clip = clip_for(cfg, cache, train, attributes);
  torch::NoGradGuard no_grad_outer;
  auto embed_text = [&](const std::vector<std::string>& texts) { return clip->text->forward(tokenizer.encode(texts)); };
  auto embed_images = [&](const torch::Tensor& images) {
    return fashion::in_batches(images, [&](const torch::Tensor& x) { return clip->image->forward(x); });
  };
  std::vector<std::string> class_prompts;
  for (int64_t k = 0; k < ft::classes; ++k) class_prompts.push_back(ft::caption(0, k, 0, 0));
  const auto gap = measure_clip(train, test, embed_text(class_prompts), embed_images);

  // 4. Translators with condition noise and without (the paper's ablation). The default
  // noise makes a noisy condition as far from its image embedding, in cosine, as a
  // matched text is: for D dimensions, E cos(c, c + n) = 1 / sqrt(1 + D sigma^2).
  const double noise = cfg.condition_noise >= 0
                           ? cfg.condition_noise
                           : std::sqrt((1.0 / (gap.matched * gap.matched) - 1.0) / static_cast<double>(cfg.clip_dim));
  ft::image_encoder encoder{clip->image};
  auto translator = text_translator(cfg, cache, generator, encoder, noise, cfg.seed + 21);
  auto translator_no_noise = text_translator(cfg, cache, generator, encoder, 0.0, cfg.seed + 21);
  const double models_seconds = seconds_since(total_start);

  // 5. Prompts -> text embeddings -> conditions; every method samples every prompt.
  const prompt_set prompts(cfg.per_prompt);
  const auto conditions = embed_text(prompts.texts);
  const auto rows = run_methods(cfg, generator, encoder, translator, translator_no_noise, noise, conditions, short_t);

  // 6. Scores, the table, JSON and images.
  auto features_of = [&](const torch::Tensor& images) {
    return fashion::in_batches(images, [&](const torch::Tensor& x) { return models.judge->features(x); });
  };
  const scorer sc{cfg, prompts, attributes, models.judge, features_of, embed_images, features_of(test.images), conditions};
  const auto real = real_scores(test, sc);
  const auto out_rows = sc.score_all(rows, short_t);
  const double total_seconds = seconds_since(total_start);
  write_metrics(cfg,
                {{"clip", gap.to_json(cfg.clip_dim)},
                 {"condition_noise", noise},
                 {"real", real},
                 {"rows", out_rows},
                 {"prompts", prompts.texts},
                 {"samples_per_prompt", cfg.per_prompt},
                 {"dynamics", {{"beta", cfg.beta}, {"step_size", cfg.step_size}, {"noise_std", cfg.noise_std}}},
                 {"quick", cfg.quick},
                 {"seconds", {{"models", models_seconds}, {"total", total_seconds}}}},
                out_rows);
  std::printf("\nwrote %s and %s (%.0f s in all, %.0f s loading or training models)\n",
              (cfg.out / "text_samples.png").c_str(), (cfg.out / "metrics.json").c_str(), total_seconds,
              models_seconds);
  return 0;
}
