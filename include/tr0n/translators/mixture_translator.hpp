#pragma once
/// \file
/// `mixture_translator`: the paper's translator `q(z | c)`, a Gaussian mixture
/// whose means and weights an MLP predicts from the condition.
///
/// Architecture (as in the official code): trunk `Linear(C, H)` + ReLU with
/// `H = max(4C, 256)` by default (the official `4C` for CLIP-sized conditions;
/// at least 256 so a 10-class condition space still gets a capable network), one residual block `h + ReLU(Linear(H, H)(h))`, then
/// heads for `K` means (`radius * tanh(.)` when a radius bounds a box prior)
/// and `K` mixture logits, plus one learned log standard deviation per latent
/// dimension shared by all components and conditions, initialised to
/// log(`init_std`) (`train_translator` refits it to the prior's scale first; see
/// there).
///
/// The translator owns its condition stage (`transform`): `mixture`,
/// `log_prob`, `sample` and `mode` map every condition into the space it was
/// trained in (`canonical_conditions`), and `features_to_conditions` maps
/// encoder features there (the trainer and the tool call it).
///
/// Every option is saved with the parameters. `torch::load` into a translator
/// checks that they match; `load_mixture_translator(path)` rebuilds one from
/// them, after checking that each is a sane value.
///
/// ```
/// tr0n::mixture_translator q(tr0n::mixture_translator_options(/*C=*/10, /*d=*/32).components(8)
///                                .transform(tr0n::condition_transform::softmax));
/// auto z = q->sample(conditions, 4);  // [4 N, 32]
/// torch::save(q, "translator.pt");    // options are saved too, and checked on load
/// ```
#include <tr0n/concepts/tags.hpp>
#include <tr0n/concepts/translator.hpp>
#include <tr0n/conditions/transform.hpp>
#include <tr0n/detail/archive.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/files.hpp>
#include <tr0n/detail/compat.hpp>
#include <tr0n/random.hpp>
#include <tr0n/translators/translator_conditions.hpp>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/serialize/archive.h>
#include <torch/serialize/input-archive.h>
#include <torch/types.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <numbers>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

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
  /// Hidden width `H`; 0 means `max(4 * condition_dim, 256)` (the paper's `4C` for CLIP-sized conditions).
  TORCH_ARG(int64_t, hidden) = 0;
  /// When > 0, means are `radius * tanh(.)`, inside a box prior's support.
  TORCH_ARG(double, radius) = 0.0;
  /// Initial standard deviation of every component.
  TORCH_ARG(double, init_std) = 0.01;
  /// Floor added to the standard deviation, for a finite log density.
  TORCH_ARG(double, min_std) = 1e-6;
  /// The condition space: how encoder features become conditions.
  TORCH_ARG(condition_transform, transform) = condition_transform::none;

 public:
  int64_t hidden_width() const noexcept { return hidden_ > 0 ? hidden_ : std::max<int64_t>(4 * condition_dim_, 256); }

  /// Every option as a checked record, for saving; `from_record` reverses it.
  torch::Tensor to_record() const {
    return torch::tensor({static_cast<double>(record_version), static_cast<double>(condition_dim_),
                          static_cast<double>(latent_dim_), static_cast<double>(components_),
                          static_cast<double>(hidden_width()), radius_, init_std_, min_std_,
                          static_cast<double>(static_cast<int>(transform_))},
                         torch::kFloat64);
  }
  static mixture_translator_options from_record(const torch::Tensor& record, std::string_view where);
  void validate() const;

  static constexpr int64_t record_version = 2;
  static constexpr std::array<const char*, 9> record_names{
      "format version", "condition_dim", "latent_dim", "components", "hidden", "radius", "init_std", "min_std",
      "transform"};
  /// Bounds on sizes read from files: a corrupt record is an error, not a huge allocation.
  static constexpr int64_t max_width = int64_t{1} << 20, max_components = 4096;
  static constexpr double max_parameters = 4e9;
};

/// Checks every option: sizes positive and bounded (a translator of more than
/// `max_parameters` parameters is refused), scales finite and positive.
inline void mixture_translator_options::validate() const {
  auto check_size = [](int64_t v, int64_t hi, const char* name) {
    if (v <= 0 || v > hi) detail::fail("mixture_translator_options: ", name, ": expected a value in [1, ", hi, "], got ", v);
  };
  check_size(condition_dim_, max_width, "condition_dim");
  check_size(latent_dim_, max_width, "latent_dim");
  check_size(components_, max_components, "components");
  if (hidden_ < 0 || hidden_ > max_width)
    detail::fail("mixture_translator_options: hidden: expected a value in [0, ", max_width,
                 "] (0 = max(4 * condition_dim, 256)), got ", hidden_);
  const double h = static_cast<double>(hidden_width()), c = static_cast<double>(condition_dim_),
               d = static_cast<double>(latent_dim_), k = static_cast<double>(components_);
  if (const double n = c * h + h * h + h * k * d + h * k; n > max_parameters)
    detail::fail("mixture_translator_options: ", n, " parameters (condition_dim ", condition_dim_, ", hidden ", h,
                 ", components ", components_, ", latent_dim ", latent_dim_, "): expected at most ", max_parameters);
  if (!(radius_ >= 0) || !std::isfinite(radius_))
    detail::fail("mixture_translator_options: radius: expected a finite value >= 0, got ", radius_);
  if (!(init_std_ > 0) || !std::isfinite(init_std_))
    detail::fail("mixture_translator_options: init_std: expected a finite value > 0, got ", init_std_);
  if (!(min_std_ >= 0) || !std::isfinite(min_std_))
    detail::fail("mixture_translator_options: min_std: expected a finite value >= 0, got ", min_std_);
  if (transform_ != condition_transform::none && transform_ != condition_transform::softmax &&
      transform_ != condition_transform::l2)
    detail::fail("mixture_translator_options: transform: expected none, softmax or l2, got code ",
                 static_cast<int>(transform_));
}

inline mixture_translator_options mixture_translator_options::from_record(const torch::Tensor& record,
                                                                          std::string_view where) {
  if (!record.defined() || record.dim() != 1 || !record.is_floating_point())
    detail::fail(where, ": the options record is not a float vector");
  auto r = record.to(torch::kCPU, torch::kFloat64).contiguous();
  if (r.numel() == 5)
    detail::fail(where, ": the options record is tr0n 0.1's (format version 1, no condition transform recorded), "
                 "expected format version ", record_version, ": retrain the translator");
  if (r.numel() < 1 || r[0].item<double>() != static_cast<double>(record_version))
    detail::fail(where, ": the options record has format version ", r.numel() ? r[0].item<double>() : -1.0,
                 ", expected ", record_version, " (saved by another tr0n version: retrain the translator)");
  if (r.numel() != static_cast<int64_t>(record_names.size()))
    detail::fail(where, ": the options record has ", r.numel(), " fields, expected ", record_names.size());
  const double* v = r.data_ptr<double>();
  for (size_t i = 0; i < record_names.size(); ++i)
    if (!std::isfinite(v[i])) detail::fail(where, ": option ", record_names[i], " is ", v[i], ", expected a finite value");
  auto integer = [&](size_t i) {
    if (v[i] != std::floor(v[i]) || std::abs(v[i]) > 1e15)
      detail::fail(where, ": option ", record_names[i], " is ", v[i], ", expected an integer");
    return static_cast<int64_t>(v[i]);
  };
  const auto code = integer(8);
  if (code < 0 || code > 2) detail::fail(where, ": option transform has code ", code, ", expected 0, 1 or 2");
  mixture_translator_options o(integer(1), integer(2));
  o.components(integer(3)).hidden(integer(4)).radius(v[5]).init_std(v[6]).min_std(v[7]).transform(
      static_cast<condition_transform>(code));
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    detail::fail(where, ": ", std::string_view(e.what()).substr(6));  // drop the inner "tr0n: "
  }
  return o;
}

class mixture_translator_impl : public torch::nn::Cloneable<mixture_translator_impl> {
 public:
  using tr0n_tag = translator_tag;

  explicit mixture_translator_impl(mixture_translator_options options) : options(std::move(options)) {
    this->options.validate();
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

  condition_transform transform() const noexcept { return options.transform(); }

  /// Encoder features `[B, C]` mapped into this translator's condition space.
  torch::Tensor features_to_conditions(const torch::Tensor& features) const {
    return tr0n::features_to_conditions(options.transform(), features);
  }

  mixture_params mixture(const torch::Tensor& conditions) {
    detail::check_matrix(conditions, "mixture_translator: conditions", condition_dim(),
                         "the translator's condition_dim");
    const auto c = canonical_conditions(options.transform(), conditions);
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
    auto k = random::multinomial(torch::softmax(p.logits, -1), n, /*replacement=*/true);  // [B, n]
    auto idx = k.unsqueeze(-1).expand({b, n, latent_dim()});
    auto mu = p.means.gather(1, idx).reshape({b * n, latent_dim()});
    auto std = p.log_std.exp() + options.min_std();
    return mu + std * random::randn_like(mu);
  }

  /// The mean of the most likely component per condition, `[B, d]`.
  torch::Tensor mode(const torch::Tensor& c) { return mode_of(mixture(c)); }

  void save(torch::serialize::OutputArchive& archive) const override {
    archive.write(record_key, options.to_record(), /*is_buffer=*/true);
    torch::nn::Module::save(archive);
  }

  /// Loads parameters saved with `torch::save`. Every option in the archive
  /// must equal this translator's (`init_std` excepted: it only sets the
  /// start of training, and is taken from the archive).
  void load(torch::serialize::InputArchive& archive) override {
    torch::Tensor saved;
    if (!archive.try_read(record_key, saved, /*is_buffer=*/true))
      detail::fail("mixture_translator: cannot load: the archive holds no mixture_translator "
                   "options (was it saved from a mixture_translator?)");
    const auto theirs = mixture_translator_options::from_record(saved, "mixture_translator: cannot load");
    const auto a = theirs.to_record(), b = options.to_record();
    for (int64_t i = 1; i < a.numel(); ++i) {
      if (i == 6) continue;  // init_std
      const double x = a[i].item<double>(), y = b[i].item<double>();
      if (x != y) {
        auto describe = [&](double v) {
          std::ostringstream os;
          if (i == 8) os << to_string(static_cast<condition_transform>(static_cast<int>(v)));
          else os << v;
          return os.str();
        };
        const auto* name = mixture_translator_options::record_names[static_cast<size_t>(i)];
        detail::fail("mixture_translator: cannot load: the archive was saved with ", name, " = ", describe(x),
                     " but this translator has ", name, " = ", describe(y));
      }
    }
    options.init_std(theirs.init_std());
    torch::nn::Module::load(archive);
    check_loaded_parameters();
  }

  static constexpr const char* record_key = "tr0n_mixture_translator_options";

  mixture_translator_options options;
  torch::nn::Linear trunk{nullptr}, block{nullptr}, means_head{nullptr}, logits_head{nullptr};
  torch::Tensor log_std;

 private:
  void check_loaded_parameters() {
    torch::NoGradGuard no_grad;
    for (const auto& item : named_parameters())
      if (!torch::isfinite(item.value()).all().template item<bool>())
        detail::fail("mixture_translator: cannot load: parameter ", item.key(), " holds non-finite values");
  }
};

TORCH_MODULE_IMPL(mixture_translator, mixture_translator_impl);

/// Loads a translator saved with `torch::save`, rebuilt with the options recorded
/// in it (for programs that do not know them, like the `tr0n` tool), from a
/// stream; `name` names it in errors. Anything but a whole translator file
/// (empty, truncated, random, another module, parameters of the wrong shape)
/// is one `std::invalid_argument` naming `name` and the reason.
inline mixture_translator load_mixture_translator(std::istream& in, const std::string& name,
                                                  std::optional<torch::Device> device = std::nullopt) {
  const std::string where = "load_mixture_translator: " + name;
  torch::serialize::InputArchive archive;
  detail::torch_optional<torch::Device> at;
  if (device) at = *device;
  std::string bytes = detail::stream_bytes(in);
  if (bytes.empty()) detail::fail(where, ": empty file, expected a translator");
  detail::check_archive(bytes, where);
  try {
    std::istringstream archive_bytes(std::move(bytes));
    archive.load_from(archive_bytes, at);
  } catch (const std::exception& e) {
    detail::fail(where, ": not a translator file (", detail::brief(e), ")");
  }
  torch::Tensor saved;
  bool found = false;
  try {
    found = archive.try_read(mixture_translator_impl::record_key, saved, /*is_buffer=*/true);
  } catch (const std::exception& e) {
    detail::fail(where, ": not a translator file (", detail::brief(e), ")");
  }
  if (!found) detail::fail(where, ": holds no mixture_translator options (was it saved from one?)");
  mixture_translator q(mixture_translator_options::from_record(saved, where));
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (const auto& item : q->named_parameters()) shapes.emplace_back(item.key(), item.value().sizes().vec());
  try {
    q->load(archive);
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    detail::fail(where, ": not a whole translator file (", detail::brief(e), ")");
  }
  auto loaded = q->named_parameters();
  for (const auto& [key, shape] : shapes) {
    const auto& t = loaded[key];
    if (t.sizes().vec() != shape || !t.is_floating_point())
      detail::fail(where, ": parameter ", key, " is ", t.scalar_type(), " ", detail::shape_of(t),
                   ", but the recorded options give ", torch::IntArrayRef(shape));
  }
  if (device) q->to(*device);
  return q;
}

/// The same, from a file.
inline mixture_translator load_mixture_translator(const std::string& path,
                                                  std::optional<torch::Device> device = std::nullopt) {
  if (!std::filesystem::exists(path)) detail::fail("load_mixture_translator: ", path, ": file not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail("load_mixture_translator: ", path, ": cannot be opened");
  return load_mixture_translator(in, path, device);
}

static_assert(MixtureTranslator<mixture_translator> && TrainableTranslator<mixture_translator> &&
              MixtureTranslator<mixture_translator_impl> && TrainableTranslator<mixture_translator_impl>);

}  // namespace tr0n
