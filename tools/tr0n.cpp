// tr0n: the command-line tool, for users who do not write C++.
//
//   tr0n train  --generator G.pt --encoder F.pt --latent-dim D [--prior normal|truncated:R|uniform[:LO:HI]]
//               [--condition-transform none|softmax|l2] [--condition-noise S] [--mixtures K] [--steps N]
//               [--batch B] [--lr LR] [--seed S] --out translator.pt
//   tr0n sample --generator G.pt --encoder F.pt --translator translator.pt
//               (--conditions C.pt | --condition-image A.png [--condition-image B.png --interpolate K])
//               --energy cross_entropy|neg_cosine|squared [--augment N]
//               --init prior|translator_sample|translator_mixture|best_of:N --steps T [--step-size E]
//               [--noise-std S] [--samples-per-condition n] [--seed S] --out samples.pt
//
// Models are TorchScript files; conditions and samples are tensor files that
// Python reads and writes with torch.load / torch.save. Bad flags, missing
// files and shape mismatches exit with status 2 and one line on stderr.
#include <tr0n.hpp>
#include <tr0n/adapters/torchscript.hpp>

#include <CLI/CLI.hpp>
#include <stb/stb_image.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace {

/// The prior chosen on the command line. Type erasure is fine here: it is
/// called once per run to draw starts, and for a box lookup per step.
class cli_prior {
 public:
  static cli_prior parse(const std::string& spec, int64_t dim) {
    auto fields = split(spec, ':');
    if (fields[0] == "normal" && fields.size() == 1) return cli_prior(dim, tr0n::standard_normal(dim), std::nullopt);
    if (fields[0] == "truncated" && fields.size() == 2) {
      tr0n::truncated_normal p(dim, number(fields[1], "--prior truncated:R"));
      return cli_prior(dim, p, p.box());
    }
    if (fields[0] == "uniform" && (fields.size() == 1 || fields.size() == 3)) {
      tr0n::uniform p = fields.size() == 1 ? tr0n::uniform(dim)
                                           : tr0n::uniform(dim, number(fields[1], "--prior uniform:LO:HI"),
                                                           number(fields[2], "--prior uniform:LO:HI"));
      return cli_prior(dim, p, p.box());
    }
    tr0n::detail::fail("--prior: expected normal, truncated:R or uniform[:LO:HI], got '", spec, "'");
  }

  int64_t dim() const { return dim_; }
  torch::Tensor sample(int64_t n, torch::TensorOptions o) const { return sample_(n, o); }
  tr0n::box box() const {
    const double inf = std::numeric_limits<double>::infinity();
    return box_.value_or(tr0n::box{-inf, inf});
  }

 private:
  template <class P>
  cli_prior(int64_t dim, P p, std::optional<tr0n::box> b)
      : dim_(dim), sample_([p](int64_t n, torch::TensorOptions o) { return p.sample(n, o); }), box_(b) {}

  static std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out(1);
    for (char ch : s) {
      if (ch == sep) {
        out.emplace_back();
      } else {
        out.back().push_back(ch);
      }
    }
    return out;
  }
  static double number(const std::string& s, const char* what) {
    try {
      size_t used = 0;
      double v = std::stod(s, &used);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
    tr0n::detail::fail(what, ": expected a number, got '", s, "'");
  }

  int64_t dim_;
  std::function<torch::Tensor(int64_t, torch::TensorOptions)> sample_;
  std::optional<tr0n::box> box_;
};

/// The energy chosen on the command line: one type, a switch per evaluation.
struct cli_energy {
  using tr0n_tag = tr0n::energy_tag;
  enum class kind { cross_entropy, neg_cosine, squared } which;
  int64_t augment_copies = 0;

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    switch (which) {
      case kind::cross_entropy: return tr0n::cross_entropy{}(ctx);
      case kind::squared: return tr0n::squared_distance{}(ctx);
      case kind::neg_cosine: break;
    }
    if (augment_copies > 0) return tr0n::augmented_neg_cosine<>{.copies = augment_copies}(ctx);
    return tr0n::neg_cosine{}(ctx);
  }
};

/// Reads a PNG/JPEG into [1, C, H, W] in [0, 1], resized (bilinear) to `like`'s shape.
torch::Tensor read_image(const std::string& path, const torch::Tensor& like) {
  int w = 0, h = 0, n = 0;
  const int channels = static_cast<int>(like.size(1));
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &n, channels);
  if (!data) tr0n::detail::fail("--condition-image: ", path, ": cannot be read as an image (", stbi_failure_reason(), ")");
  auto img = torch::from_blob(data, {h, w, channels}, torch::kUInt8).clone();
  stbi_image_free(data);
  auto x = img.permute({2, 0, 1}).unsqueeze(0).to(like.options()).div_(255.0);
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{like.size(2), like.size(3)})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

struct common_flags {
  std::string generator, encoder, prior = "normal", device = "cpu";
  int64_t latent_dim = 0;
  std::optional<uint64_t> seed;
};

void add_common(CLI::App* cmd, common_flags& f, bool latent_required) {
  cmd->add_option("--generator", f.generator, "TorchScript generator: z [B, d] -> x")->required();
  cmd->add_option("--encoder", f.encoder, "TorchScript encoder: x -> [B, C]")->required();
  auto* latent = cmd->add_option("--latent-dim", f.latent_dim, "Latent width d")->check(CLI::PositiveNumber);
  if (latent_required) latent->required();
  cmd->add_option("--prior", f.prior, "normal | truncated:R | uniform[:LO:HI]")->capture_default_str();
  cmd->add_option("--device", f.device, "cpu, cuda, cuda:1, ...")->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seed for reproducible runs");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tr0n: zero-shot plug-and-play conditional generation (TR0N) with TorchScript models"};
  app.require_subcommand(1);
  common_flags common;

  // train
  auto* train = app.add_subcommand("train", "Train a translator zero-shot on (z, f(G(z))) pairs");
  add_common(train, common, true);
  std::string transform = "none", out;
  double condition_noise = 0, lr = 1e-3;
  int64_t mixtures = 10, steps = 2000, batch = 256;
  train->add_option("--condition-transform", transform, "none | softmax | l2")
      ->check(CLI::IsMember({"none", "softmax", "l2"}))
      ->capture_default_str();
  train->add_option("--condition-noise", condition_noise, "Gaussian noise std on conditions")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train->add_option("--mixtures", mixtures, "Mixture components K")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--steps", steps, "Training steps")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--batch", batch, "Pairs per step")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--out", out, "Where to write the translator")->required();

  // sample
  auto* sample = app.add_subcommand("sample", "Sample latents for conditions and write z, x, energy, ok");
  add_common(sample, common, false);
  std::string translator_path, conditions_path, energy_name, init_name;
  std::vector<std::string> images;
  int64_t interpolate = 0, augment = 0, t_steps = 0, per_condition = 1;
  double step_size = 0.01;
  std::optional<double> noise_std;
  sample->add_option("--translator", translator_path, "Translator written by `tr0n train`")->required();
  auto* cond_opt = sample->add_option("--conditions", conditions_path, "Tensor file: float [N, C] or int64 labels [N]");
  auto* img_opt = sample->add_option("--condition-image", images, "Reference image(s): condition = f(image)");
  cond_opt->excludes(img_opt);
  sample->add_option("--interpolate", interpolate, "With two images: K conditions along the slerp path")
      ->check(CLI::Range(int64_t{2}, int64_t{1000}));
  sample->add_option("--energy", energy_name, "cross_entropy | neg_cosine | squared")
      ->required()
      ->check(CLI::IsMember({"cross_entropy", "neg_cosine", "squared"}));
  sample->add_option("--augment", augment, "neg_cosine over N augmented copies (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sample->add_option("--init", init_name, "prior | translator_sample | translator_mixture | best_of:N")->required();
  sample->add_option("--steps", t_steps, "Langevin steps T")->required()->check(CLI::NonNegativeNumber);
  sample->add_option("--step-size", step_size, "Step size eta")->check(CLI::PositiveNumber)->capture_default_str();
  sample->add_option("--noise-std", noise_std, "Noise std (default: sqrt(2 eta), exact Langevin)")
      ->check(CLI::NonNegativeNumber);
  sample->add_option("--samples-per-condition", per_condition, "Samples per condition")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sample->add_option("--out", out, "Where to write the samples")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tr0n: %s (see --help)\n", e.what());
    return 2;
  }

  try {
    const torch::Device device(common.device);
    const auto options = tr0n::torchscript_options().device(device);
    if (common.seed) torch::manual_seed(*common.seed);

    if (*train) {
      auto prior = cli_prior::parse(common.prior, common.latent_dim);
      tr0n::torchscript_generator generator(common.generator, prior, options);
      tr0n::torchscript_encoder encoder(common.encoder, generator.example_output(), options);
      auto opts = tr0n::mixture_translator_options(encoder.condition_dim(), common.latent_dim).components(mixtures);
      if (auto b = prior.box(); std::isfinite(b.hi) && b.lo == -b.hi) opts.radius(b.hi);
      tr0n::mixture_translator q(opts);
      q->to(device);
      auto report = tr0n::train_translator(q, generator, encoder,
                                           tr0n::translator_training_options()
                                               .steps(steps)
                                               .batch_size(batch)
                                               .lr(lr)
                                               .condition_noise(condition_noise)
                                               .transform(tr0n::parse_condition_transform(transform))
                                               .seed(common.seed),
                                           tr0n::progress_bar("translator").every(std::max<int64_t>(1, steps / 50)));
      torch::save(q, out);
      std::fprintf(stderr, "wrote %s (final NLL %.4f)\n", out.c_str(), report.final_loss());
      return 0;
    }

    auto q = tr0n::load_mixture_translator(translator_path, device);
    const auto latent_dim = common.latent_dim > 0 ? common.latent_dim : q->latent_dim();
    if (latent_dim != q->latent_dim())
      tr0n::detail::fail("--latent-dim ", latent_dim, " does not match the translator's latent_dim ", q->latent_dim());
    auto prior = cli_prior::parse(common.prior, latent_dim);
    tr0n::torchscript_generator generator(common.generator, prior, options);
    tr0n::torchscript_encoder encoder(common.encoder, generator.example_output(), options);

    torch::Tensor conditions;
    if (!conditions_path.empty()) {
      conditions = tr0n::read_conditions(conditions_path).to(device);
      if (conditions.scalar_type() == torch::kLong) {
        const auto classes = encoder.condition_dim();
        if (conditions.numel() > 0 && (conditions.min().item<int64_t>() < 0 || conditions.max().item<int64_t>() >= classes))
          tr0n::detail::fail(conditions_path, ": class labels must lie in [0, ", classes, ")");
        conditions = tr0n::one_hot_conditions(conditions, classes);
      }
    } else if (!images.empty()) {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> rows;
      for (const auto& path : images) rows.push_back(encoder.forward(read_image(path, generator.example_output())));
      conditions = torch::cat(rows);
      if (interpolate > 0) {
        if (images.size() != 2) tr0n::detail::fail("--interpolate: needs exactly two --condition-image, got ", images.size());
        conditions = tr0n::interpolate(conditions[0], conditions[1], interpolate);
      }
    } else {
      tr0n::detail::fail("sample: give --conditions or --condition-image");
    }
    conditions = conditions.to(torch::kFloat32);

    cli_energy energy{energy_name == "cross_entropy" ? cli_energy::kind::cross_entropy
                      : energy_name == "squared"     ? cli_energy::kind::squared
                                                     : cli_energy::kind::neg_cosine,
                      augment};
    const tr0n::fixed_noise noise{noise_std.value_or(std::sqrt(2.0 * step_size))};
    auto opts = tr0n::sampler_options().steps(t_steps).seed(common.seed);
    auto run = [&](auto init) {
      tr0n::sampler s(generator, encoder, energy, q, opts, init, tr0n::constant_step{step_size}, noise);
      return s.sample(conditions, per_condition, tr0n::progress_bar("sampling").every(std::max<int64_t>(1, t_steps / 50)));
    };
    tr0n::sample_result r;
    if (init_name == "prior") {
      r = run(tr0n::init::prior{});
    } else if (init_name == "translator_sample") {
      r = run(tr0n::init::translator_sample{});
    } else if (init_name == "translator_mixture") {
      r = run(tr0n::init::translator_mixture{});
    } else if (init_name.rfind("best_of:", 0) == 0) {
      int64_t n = 0;
      try {
        n = std::stoll(init_name.substr(8));
      } catch (const std::exception&) {
      }
      if (n < 1) tr0n::detail::fail("--init best_of:N: expected N >= 1, got '", init_name.substr(8), "'");
      r = run(tr0n::init::best_of<>{.candidates = n});
    } else {
      tr0n::detail::fail("--init: expected prior, translator_sample, translator_mixture or best_of:N, got '", init_name, "'");
    }
    tr0n::write_samples(out, r);
    std::fprintf(stderr, "wrote %s: %lld samples, %lld ok, mean energy %.4f\n", out.c_str(),
                 static_cast<long long>(r.z.size(0)), static_cast<long long>(r.ok.sum().item<int64_t>()),
                 r.energy.mean().item<double>());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", tr0n::detail::brief(e).c_str());
    return 2;
  }
}
