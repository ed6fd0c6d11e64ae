#pragma once
/// \file
/// `mixture_translator`: the paper's translator `q(z | c)`, a Gaussian mixture
/// whose means and weights an MLP predicts from the condition.
///
/// Architecture (as in the official code): trunk `Linear(C, H)` + ReLU with
/// `H = 4C` by default, one residual block `h + ReLU(Linear(H, H)(h))`, then
/// heads for `K` means (`radius * tanh(.)` when a radius bounds a box prior)
/// and `K` mixture logits, plus one learned log standard deviation per latent
/// dimension shared by all components and conditions, initialised to log(0.01).
///
/// ```
/// tr0n::mixture_translator q(tr0n::mixture_translator_options(/*C=*/10, /*d=*/32).components(8));
/// auto z = q->sample(conditions, 4);  // [4 N, 32]
/// torch::save(q, "translator.pt");    // options are saved too, and checked on load
/// ```
#include <tr0n/concepts/translator.hpp>
#include <tr0n/detail/check.hpp>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/serialize/archive.h>
#include <torch/serialize/input-archive.h>
#include <torch/types.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <optional>
#include <string>

namespace tr0n {

struct mixture_translator_options {
  mixture_translator_options(int64_t condition_dim, int64_t latent_dim)
      : condition_dim_(condition_dim), latent_dim_(latent_dim) {}

  /// Width `C` of the conditions.
  TORCH_ARG(int64_t, condition_dim);
  /// Width `d` of the latents.
  TORCH_ARG(int64_t, latent_dim);
  /// Number of mixture components `K`; 1 is a plain Gaussian.
  TORCH_ARG(int64_t, components) = 1;
  /// Hidden width `H`; 0 means the paper's `4 * condition_dim`.
  TORCH_ARG(int64_t, hidden) = 0;
  /// When > 0, means are `radius * tanh(.)`, inside a box prior's support.
  TORCH_ARG(double, radius) = 0.0;
  /// Initial standard deviation of every component.
  TORCH_ARG(double, init_std) = 0.01;
  /// Floor added to the standard deviation, for a finite log density.
  TORCH_ARG(double, min_std) = 1e-6;

 public:
  int64_t hidden_width() const noexcept { return hidden_ > 0 ? hidden_ : 4 * condition_dim_; }
};

class mixture_translator_impl : public torch::nn::Cloneable<mixture_translator_impl> {
 public:
  using tr0n_tag = translator_tag;

  explicit mixture_translator_impl(mixture_translator_options options) : options(std::move(options)) {
    validate();
    reset();
  }
  mixture_translator_impl(int64_t condition_dim, int64_t latent_dim)
      : mixture_translator_impl(mixture_translator_options(condition_dim, latent_dim)) {}

  void reset() override {
    const auto c = options.condition_dim(), d = options.latent_dim(), k = options.components();
    const auto h = options.hidden_width();
    trunk = register_module("trunk", torch::nn::Linear(c, h));
    block = register_module("block", torch::nn::Linear(h, h));
    means_head = register_module("means_head", torch::nn::Linear(h, k * d));
    logits_head = register_module("logits_head", torch::nn::Linear(h, k));
    log_std = register_parameter("log_std", torch::full({d}, std::log(options.init_std())));
  }

  int64_t latent_dim() const noexcept { return options.latent_dim(); }
  int64_t condition_dim() const noexcept { return options.condition_dim(); }
  int64_t components() const noexcept { return options.components(); }

  mixture_params mixture(const torch::Tensor& c) {
    detail::check_matrix(c, "mixture_translator: conditions", condition_dim(),
                         "the translator's condition_dim");
    auto h = torch::relu(trunk(c));
    h = h + torch::relu(block(h));
    auto means = means_head(h).view({c.size(0), components(), latent_dim()});
    if (options.radius() > 0) means = options.radius() * torch::tanh(means);
    return {means, logits_head(h), log_std};
  }

  /// log q(z | c), `[B]`.
  torch::Tensor log_prob(const torch::Tensor& z, const torch::Tensor& c) {
    detail::check_matrix(z, "mixture_translator: z", latent_dim(), "the translator's latent_dim");
    if (z.size(0) != c.size(0))
      detail::fail("mixture_translator: z has ", z.size(0), " rows but conditions have ", c.size(0),
                   ": expected one condition per latent");
    auto p = mixture(c);
    auto std = p.log_std.exp() + options.min_std();
    auto diff = (z.unsqueeze(1) - p.means) / std;  // [B, K, d]
    auto comp = -0.5 * diff.pow(2).sum(-1) - std.log().sum() -
                0.5 * static_cast<double>(latent_dim()) * std::log(2.0 * std::numbers::pi);
    return torch::logsumexp(torch::log_softmax(p.logits, -1) + comp, -1);
  }

  /// `n` draws per condition, `[B * n, d]`, condition-major.
  torch::Tensor sample(const torch::Tensor& c, int64_t n) {
    detail::check_positive(n, "mixture_translator::sample: n");
    auto p = mixture(c);
    const auto b = c.size(0);
    auto k = torch::multinomial(torch::softmax(p.logits, -1), n, /*replacement=*/true);  // [B, n]
    auto idx = k.unsqueeze(-1).expand({b, n, latent_dim()});
    auto mu = p.means.gather(1, idx).reshape({b * n, latent_dim()});
    auto std = p.log_std.exp() + options.min_std();
    return mu + std * torch::randn_like(mu);
  }

  /// The mean of the most likely component per condition, `[B, d]`.
  torch::Tensor mode(const torch::Tensor& c) {
    auto p = mixture(c);
    auto k = p.logits.argmax(-1);
    return p.means.index({torch::arange(c.size(0), k.options()), k});
  }

  void save(torch::serialize::OutputArchive& archive) const override {
    archive.write("tr0n_mixture_translator_options", options_tensor(), /*is_buffer=*/true);
    torch::nn::Module::save(archive);
  }

  void load(torch::serialize::InputArchive& archive) override {
    torch::Tensor saved;
    if (!archive.try_read("tr0n_mixture_translator_options", saved, /*is_buffer=*/true))
      detail::fail("mixture_translator: cannot load: the archive holds no mixture_translator "
                   "options (was it saved from a mixture_translator?)");
    const auto mine = options_tensor();
    static constexpr std::array<const char*, 5> names{"condition_dim", "latent_dim", "components",
                                                      "hidden", "radius"};
    if (saved.numel() != mine.numel())
      detail::fail("mixture_translator: cannot load: the archive's options record has ", saved.numel(),
                   " fields, expected ", mine.numel());
    for (int64_t i = 0; i < mine.numel(); ++i) {
      const double a = saved[i].item<double>(), b = mine[i].item<double>();
      if (a != b)
        detail::fail("mixture_translator: cannot load: the archive was saved with ", names[i], " = ", a,
                     " but this translator has ", names[i], " = ", b);
    }
    torch::nn::Module::load(archive);
  }

  mixture_translator_options options;
  torch::nn::Linear trunk{nullptr}, block{nullptr}, means_head{nullptr}, logits_head{nullptr};
  torch::Tensor log_std;

 private:
  void validate() const {
    detail::check_positive(options.condition_dim(), "mixture_translator_options: condition_dim");
    detail::check_positive(options.latent_dim(), "mixture_translator_options: latent_dim");
    detail::check_positive(options.components(), "mixture_translator_options: components");
    if (options.hidden() < 0)
      detail::fail("mixture_translator_options: hidden: expected >= 0 (0 = 4 * condition_dim), got ",
                   options.hidden());
    if (!(options.radius() >= 0) || !std::isfinite(options.radius()))
      detail::fail("mixture_translator_options: radius: expected a finite value >= 0, got ",
                   options.radius());
    if (!(options.init_std() > 0))
      detail::fail("mixture_translator_options: init_std: expected > 0, got ", options.init_std());
    if (!(options.min_std() >= 0))
      detail::fail("mixture_translator_options: min_std: expected >= 0, got ", options.min_std());
  }

  torch::Tensor options_tensor() const {
    return torch::tensor({static_cast<double>(options.condition_dim()),
                          static_cast<double>(options.latent_dim()),
                          static_cast<double>(options.components()),
                          static_cast<double>(options.hidden_width()), options.radius()},
                         torch::kFloat64);
  }
};

TORCH_MODULE_IMPL(mixture_translator, mixture_translator_impl);

/// Loads a translator saved with `torch::save`, rebuilt with the options recorded
/// in the file (for programs that do not know them, like the `tr0n` tool).
inline mixture_translator load_mixture_translator(const std::string& path,
                                                  std::optional<torch::Device> device = std::nullopt) {
  if (!std::filesystem::exists(path)) detail::fail("load_mixture_translator: ", path, ": file not found");
  torch::serialize::InputArchive archive;
  c10::optional<torch::Device> where;
  if (device) where = *device;
  archive.load_from(path, where);
  torch::Tensor saved;
  if (!archive.try_read("tr0n_mixture_translator_options", saved, /*is_buffer=*/true) || saved.numel() != 5)
    detail::fail("load_mixture_translator: ", path, ": holds no mixture_translator options (was it saved from one?)");
  saved = saved.to(torch::kCPU, torch::kFloat64);
  mixture_translator q(mixture_translator_options(static_cast<int64_t>(saved[0].item<double>()),
                                                  static_cast<int64_t>(saved[1].item<double>()))
                           .components(static_cast<int64_t>(saved[2].item<double>()))
                           .hidden(static_cast<int64_t>(saved[3].item<double>()))
                           .radius(saved[4].item<double>()));
  q->load(archive);
  if (device) q->to(*device);
  return q;
}

static_assert(TrainableTranslator<mixture_translator> && TrainableTranslator<mixture_translator_impl>);

}  // namespace tr0n
