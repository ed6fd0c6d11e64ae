#pragma once
/// \file
/// Zero-shot translator training, the paper's Algorithm 1: draw `z ~ p(z)`,
/// compute the condition `c = T(f(G(z)))` without gradients (`T` is the
/// translator's own condition stage, `features_to_conditions`), optionally add
/// Gaussian noise to `c`, and maximise `log q(z | c)`. No real data is involved.
///
/// ```
/// tr0n::mixture_translator q(tr0n::mixture_translator_options(10, 16).components(10)
///                                .transform(tr0n::condition_transform::softmax));
/// auto report = tr0n::train_translator(q, generator, classifier, tr0n::translator_training_options().seed(0),
///                                      tr0n::progress_bar("translator"));
/// // report.nll(), report.std_min, report.std_max, report.warnings
/// ```
///
/// **The scale of the mixture.** Adam moves a parameter by about `lr` per step,
/// whatever its gradient. The official code starts every standard deviation at
/// 0.01 and trains for 10 epochs over a million pairs at `lr = 1e-4` (some
/// 600,000 steps), so log-std has room to travel; at tr0n's default 2,000
/// steps it would barely move from log 0.01, the translator would collapse to
/// its means, and its samples would lose the within-class diversity. Two
/// defaults fix this, each cheap and each sufficient in the runs measured:
///  - `fit_initial_scale`: before the first step, the log-std is set to the
///    log of the per-dimension standard deviation of the first batch of
///    latents (the prior's scale). With means near the prior's mean at
///    initialisation, that is the maximum-likelihood start; training then only
///    shrinks it where the condition pins `z` down.
///  - `scale_lr_factor`: the log-std learns at `10 * lr`, so it can cover a
///    few units of log-scale in a few hundred steps while the network keeps
///    the rate it trains stably at.
/// The default `lr = 3e-3` is the rate at which 2,000 steps of 256 pairs
/// train the network of the Fashion-MNIST job's translator to its best
/// start (measured: 1e-3 left its translator-only accuracy at 0.73, 3e-3
/// reached 0.85).
/// The report gives the learned std range, and warns when it barely moved.
///
/// **Non-finite losses** (a generator or encoder that returns NaN for some
/// latents) are skipped on the device, without a host sync: such a step
/// leaves parameters and Adam's moments as they were. The report counts them;
/// more than `max_skipped_fraction` of the steps so far (checked every 100
/// steps and at the end) stops training with an error.
///
/// **Checkpoints.** With `checkpoint_path(p)`, the run writes a checkpoint to
/// `p` at the end and, with `checkpoint_every(k)`, every `k` steps (each write
/// atomic: a crash leaves the previous one whole). `resume_from(p)` continues
/// the run a checkpoint holds, with the same options (each difference is
/// refused by name); on CPU the result is bitwise the uninterrupted run's.
/// See `tr0n/training/checkpoint.hpp` for what a checkpoint holds.
///
/// **The official hyperparameters** (`layer6ai-labs/tr0n`, `scripts/run_script_train_*.sh`),
/// for users reproducing it:
///
/// | official flag | value | here |
/// |---|---|---|
/// | `--optim adam --lr` | 1e-4 | `lr(1e-4)`, `scale_lr_factor(1)` |
/// | `--scheduler cosine` (to 0 over the run) | cosine | always; `lr_min(0)` |
/// | `--max_grad_norm` | 1 | `grad_clip(1)` |
/// | `--alpha_nll` (loss scale) | 1e-4 | `loss_scale(1e-4)` |
/// | `--batch_size` | 16 | `batch_size(16)` |
/// | `--num_epochs` over `--datasize_syn` pairs | 10 over 1,000,000 | `dataset_size(1000000)`, `steps(625000)` |
/// | `--num_mixtures` | 10 | `mixture_translator_options(...).components(10)` |
/// | log-std start | log 0.01 | `init_std(0.01)` (the default), `fit_initial_scale(false)` |
/// | `--add_clip_noise --clip_noise_scale` | 0.2 (StyleGAN, NVAE), 0.5 (BigGAN + OpenCLIP), off (BigGAN + CLIP) | `condition_noise(...)` |
/// | condition transform | none (raw CLIP embeddings) | `transform(condition_transform::none)` |
#include <tr0n/concepts/callback.hpp>
#include <tr0n/concepts/encoder.hpp>
#include <tr0n/concepts/generator.hpp>
#include <tr0n/concepts/translator.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/fit.hpp>
#include <tr0n/detail/masked_adam.hpp>
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/random.hpp>
#include <tr0n/runtime/precision.hpp>
#include <tr0n/training/checkpoint.hpp>
#include <tr0n/concepts/reducer.hpp>
#include <tr0n/detail/files.hpp>
#include <tr0n/detail/hooks.hpp>
#include <tr0n/translators/translator_conditions.hpp>

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <numbers>
#include <optional>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tr0n {

struct translator_training_options {
  /// Optimiser steps.
  TORCH_ARG(int64_t, steps) = 2000;
  /// Pairs per step.
  TORCH_ARG(int64_t, batch_size) = 256;
  /// Adam's initial learning rate, decayed along a cosine to `lr_min`.
  TORCH_ARG(double, lr) = 3e-3;
  TORCH_ARG(double, lr_min) = 0.0;
  /// The log standard deviation (a translator's `log_std`) learns at `scale_lr_factor * lr`.
  TORCH_ARG(double, scale_lr_factor) = 10.0;
  /// Set the log standard deviation to the first batch's latent scale before training.
  TORCH_ARG(bool, fit_initial_scale) = true;
  /// Global gradient-norm clipping; 0 turns it off.
  TORCH_ARG(double, grad_clip) = 1.0;
  /// The loss is `loss_scale * NLL` (the official `alpha_nll`); reports show the NLL.
  TORCH_ARG(double, loss_scale) = 1.0;
  /// Training noise on the conditions: the paper's bridge from CLIP image
  /// embeddings to text embeddings. Three ways to give it, at most one at a
  /// time (`expected_noise_cosine` says what each gives on given features):
  ///  - `condition_noise`: the std of Gaussian noise added to each coordinate
  ///    of the conditions, after the condition stage. On unit (l2) conditions
  ///    of width C, a noisy and a clean one have a cosine of about
  ///    1 / sqrt(1 + condition_noise^2 C): 0.1 on CLIP's 512 is about 0.40.
  ///  - `feature_noise`: the official code's `clip_noise_scale`, the std of
  ///    Gaussian noise on the encoder's raw features, before the condition
  ///    stage, so its effect depends on their norm r: a cosine of about
  ///    r / sqrt(r^2 + s^2 C), 0.911 for the official 0.2 on CLIP ViT-B/32's
  ///    features (r about 10, C = 512). With `adaptive_feature_noise` (the
  ///    official `with_adaptive_noise`) each row's noise is first rescaled to
  ///    that row's norm: a cosine of about 1 / sqrt(1 + s^2).
  ///  - `noise_cosine`: the noise given by its effect, the cosine between a
  ///    noisy and a clean condition, in (0, 1): each noisy condition is at
  ///    exactly that cosine from its clean one (after the stage), of the same
  ///    norm, in a random direction (what a measured modality gap gives
  ///    directly, at any width C).
  /// 0 (false) turns each off.
  TORCH_ARG(double, condition_noise) = 0.0;
  TORCH_ARG(double, feature_noise) = 0.0;
  TORCH_ARG(bool, adaptive_feature_noise) = false;
  TORCH_ARG(double, noise_cosine) = 0.0;
  /// 0: fresh pairs every step. N > 0: N pairs generated once, then reused over
  /// shuffled epochs.
  TORCH_ARG(int64_t, dataset_size) = 0;
  /// Steps with a non-finite loss are skipped; more than this fraction of them fails the run.
  TORCH_ARG(double, max_skipped_fraction) = 0.1;
  /// Makes training reproducible. The run draws from its own generator and
  /// leaves LibTorch's global one alone (unseeded runs take one seed from it).
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// Where checkpoints go (written at the end of the run, and every
  /// `checkpoint_every` steps); empty: none.
  TORCH_ARG(std::string, checkpoint_path) = "";
  /// Steps between checkpoints; 0: only the one at the end.
  TORCH_ARG(int64_t, checkpoint_every) = 0;
  /// A checkpoint to continue from, written by a run with these same options.
  TORCH_ARG(std::string, resume_from) = "";
  /// What the generator and the encoder compute the training pairs in
  /// (`tr0n/runtime/precision.hpp`); the translator trains in float32.
  TORCH_ARG(tr0n::precision, precision) = tr0n::precision::fp32;

 public:
  /// The options that shape the result, as `name = value` text (what a
  /// checkpoint records and a resume must match; the seed is checked apart).
  detail::option_record record() const {
    using detail::option_text;
    return {{"steps", std::to_string(steps_)},
            {"batch_size", std::to_string(batch_size_)},
            {"lr", option_text(lr_)},
            {"lr_min", option_text(lr_min_)},
            {"scale_lr_factor", option_text(scale_lr_factor_)},
            {"fit_initial_scale", fit_initial_scale_ ? "true" : "false"},
            {"grad_clip", option_text(grad_clip_)},
            {"loss_scale", option_text(loss_scale_)},
            {"condition_noise", option_text(condition_noise_)},
            {"feature_noise", option_text(feature_noise_)},
            {"adaptive_feature_noise", adaptive_feature_noise_ ? "true" : "false"},
            {"noise_cosine", option_text(noise_cosine_)},
            {"dataset_size", std::to_string(dataset_size_)},
            {"max_skipped_fraction", option_text(max_skipped_fraction_)},
            {"precision", to_string(precision_)}};
  }

  void validate() const {
    detail::check_positive(steps_, "translator_training_options: steps");
    detail::check_positive(batch_size_, "translator_training_options: batch_size");
    auto check_rate = [](double v, const char* name) {
      if (!(v > 0) || !std::isfinite(v))
        detail::fail("translator_training_options: ", name, ": expected a finite value > 0, got ", v);
    };
    check_rate(lr_, "lr");
    check_rate(scale_lr_factor_, "scale_lr_factor");
    check_rate(loss_scale_, "loss_scale");
    if (!(lr_min_ >= 0) || lr_min_ > lr_)
      detail::fail("translator_training_options: lr_min: expected 0 <= lr_min <= lr = ", lr_, ", got ",
                   lr_min_);
    if (!(grad_clip_ >= 0) || !std::isfinite(grad_clip_))
      detail::fail("translator_training_options: grad_clip: expected a finite value >= 0, got ", grad_clip_);
    validate_noise();
    if (dataset_size_ < 0)
      detail::fail("translator_training_options: dataset_size: expected >= 0 (0 = fresh pairs), got ",
                   dataset_size_);
    if (!(max_skipped_fraction_ >= 0 && max_skipped_fraction_ <= 1))
      detail::fail("translator_training_options: max_skipped_fraction: expected a value in [0, 1], got ",
                   max_skipped_fraction_);
    if (checkpoint_every_ < 0)
      detail::fail("translator_training_options: checkpoint_every: expected >= 0 (0 = only at the end), got ",
                   checkpoint_every_);
    if (checkpoint_every_ > 0 && checkpoint_path_.empty())
      detail::fail("translator_training_options: checkpoint_every: set, but checkpoint_path is empty");
  }

 private:
  void validate_noise() const {
    auto check_std = [](double v, const char* name) {
      if (!(v >= 0) || !std::isfinite(v))
        detail::fail("translator_training_options: ", name, ": expected a finite value >= 0, got ", v);
    };
    check_std(condition_noise_, "condition_noise");
    check_std(feature_noise_, "feature_noise");
    if (!(noise_cosine_ >= 0 && noise_cosine_ < 1))
      detail::fail("translator_training_options: noise_cosine: expected a cosine in (0, 1) (0: none), got ",
                   noise_cosine_);
    if ((condition_noise_ > 0) + (feature_noise_ > 0) + (noise_cosine_ > 0) > 1)
      detail::fail("translator_training_options: condition_noise = ", condition_noise_, ", feature_noise = ",
                   feature_noise_, ", noise_cosine = ", noise_cosine_, ": expected at most one of them");
    if (adaptive_feature_noise_ && !(feature_noise_ > 0))
      detail::fail("translator_training_options: adaptive_feature_noise: set, but feature_noise is 0");
  }
};

struct training_report {
  torch::Tensor losses;       ///< `[steps_done]` NLL per step (non-finite where skipped), CPU float64
  int64_t steps_done = 0;
  int64_t skipped_steps = 0;  ///< steps whose loss was non-finite, not applied
  /// The learned standard deviation's range over latent dimensions, and where
  /// it started (NaN for a translator without `log_std`).
  double std_min = NAN, std_max = NAN, initial_std_min = NAN, initial_std_max = NAN;
  std::vector<std::string> warnings;

  /// The last step's NLL.
  double final_loss() const { return losses.numel() ? losses[-1].item<double>() : NAN; }
  /// Mean NLL over the finite losses of the last tenth of the run: the number to report.
  double nll() const {
    if (!losses.numel()) return NAN;
    const auto tail = std::max<int64_t>(1, losses.numel() / 10);
    auto last = losses.narrow(0, losses.numel() - tail, tail);
    auto finite = last.index({torch::isfinite(last)});
    return finite.numel() ? finite.mean().item<double>() : NAN;
  }
};

namespace detail {

/// Pairs `(z, c)` with `z ~ p(z)` and `c` the translator's conditions for `f(G(z))`, without gradients.
/// With `raw`, `c` is the encoder's features as they are (the training noise then goes on them first).
template <class T, class G, class F>
std::pair<torch::Tensor, torch::Tensor> make_pairs(T& translator, G& generator, F& encoder, int64_t n,
                                                   torch::TensorOptions options, precision compute = precision::fp32,
                                                   bool raw = false) {
  torch::NoGradGuard no_grad;
  auto& g = unwrap(generator);
  auto z = g.prior().sample(n, options);
  auto features = forward_in(compute, unwrap(encoder), forward_in(compute, g, z));
  const auto width = unwrap(translator).condition_dim();
  if (features.dim() != 2 || features.size(1) != width)
    fail("train_translator: encoder: produced features of shape ", shape_of(features),
         " but the translator expects conditions of width ", width);
  if (raw) return {z, features.to(options.dtype())};
  return {z, translator_conditions(translator, features).to(options.dtype())};
}

/// The training noise of `options` on a batch. `held` is what the pairs hold:
/// the encoder's raw features with `feature_noise`, else conditions; `stage`
/// maps features to conditions.
template <class Stage>
torch::Tensor with_training_noise(const translator_training_options& options, const torch::Tensor& held,
                                  Stage&& stage) {
  if (options.feature_noise() > 0) {
    auto noise = random::randn_like(held);
    if (options.adaptive_feature_noise()) noise = noise * (held.norm(2, -1, true) / noise.norm(2, -1, true));
    return stage(held + options.feature_noise() * noise);
  }
  if (options.noise_cosine() > 0) {  // rho c + sqrt(1 - rho^2) |c| u, u a random unit vector orthogonal to c
    const double rho = options.noise_cosine();
    const auto norm = held.norm(2, -1, true);
    const auto unit = held / norm.clamp_min(1e-12);
    auto u = random::randn_like(held);
    u = u - (u * unit).sum(-1, true) * unit;
    return rho * held + std::sqrt(1 - rho * rho) * norm * (u / u.norm(2, -1, true).clamp_min(1e-12));
  }
  if (options.condition_noise() > 0) return held + options.condition_noise() * random::randn_like(held);
  return held;
}

/// Global-norm clipping without a host sync.
inline void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().pow(2).sum());
  if (norms.empty()) return;
  auto total = torch::stack(norms).sum().sqrt();
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : params)
    if (p.grad().defined()) p.mutable_grad().mul_(coef);
}

/// The translator's scale parameter, when it has one (`log_std`, as `mixture_translator`).
template <class Q>
torch::Tensor scale_parameter(Q& q) {
  if constexpr (requires { { q.log_std } -> std::convertible_to<torch::Tensor>; }) {
    return q.log_std;
  } else {
    return {};
  }
}

/// Fails when more than `fraction` of `done` steps were skipped.
inline void check_skipped(int64_t n, int64_t done, double fraction) {
  if (static_cast<double>(n) > fraction * static_cast<double>(done))
    fail("train_translator: ", n, " of the first ", done, " steps had a non-finite loss (more than max_skipped_fraction = ",
         fraction, "): the generator or the encoder returns NaN or inf for some latents");
}

}  // namespace detail

namespace detail {
/// The `Reducer` of a run alone (`tr0n/concepts/reducer.hpp`): it does nothing.
struct no_reducer {
  /// The first process's plan, everywhere (only it reads and writes files).
  checkpoint_plan agree_plan(checkpoint_plan mine) { return mine; }
  /// Every process starts from the same parameters.
  void start(std::vector<torch::Tensor>&) {}
  /// The run's seed: every process's is the first's.
  uint64_t agree_seed(uint64_t seed) { return seed; }
  /// This process's stream, from the run's seed.
  uint64_t stream_seed(uint64_t seed) const { return seed; }
  /// The bytes of the checkpoint at `path` (in a group: the first process's file, sent to all).
  std::string read_checkpoint(const std::string& path) { return read_file(path); }
  int64_t rank() const { return 0; }
  int64_t world_size() const { return 1; }
  /// Every process's streams, in rank order, on the process that writes.
  std::vector<stream_state> gather_streams(stream_state mine) { return {std::move(mine)}; }
  /// Per-dimension std `[d]` of the latents every process drew, from this process's `z` `[b, d]`.
  torch::Tensor std_of(const torch::Tensor& z) { return z.std(0); }
  /// Gradients and the loss become their means over the processes, in place.
  void average(std::vector<torch::Tensor>&, torch::Tensor&) {}
  /// Whether to stop now, given this process's callbacks' answer (in a group:
  /// the same answer everywhere, a step after any process asked).
  bool stop(bool asked) { return asked; }
  /// Whether this process writes files (checkpoints).
  bool writes() const { return true; }

  static std::string read_file(const std::string& path) { return file_bytes(path, "train_translator: resume_from"); }
};

static_assert(Reducer<no_reducer>);

template <class T, class G, class F, Reducer R, class... Cbs>
training_report train_translator_impl(T& translator, G& generator, F& encoder,
                                      const translator_training_options& options, R& reducer, Cbs&... callbacks);
}  // namespace detail

template <TrainableTranslator T, Generator G, Encoder F, Callback... Cbs>
training_report train_translator(T& translator, G& generator, F& encoder,
                                 const translator_training_options& options, Cbs&&... callbacks) {
  detail::no_reducer alone;
  return detail::train_translator_impl(translator, generator, encoder, options, alone, callbacks...);
}

namespace detail {

/// The pairs a run trains on: fresh ones every step, or (with `dataset_size`)
/// a set made once and visited in a fresh permutation every epoch.
template <class T, class G, class F>
class pair_source {
 public:
  pair_source(T& translator, G& generator, F& encoder, const translator_training_options& options,
              torch::TensorOptions tensor_options)
      : translator_(translator), generator_(generator), encoder_(encoder), options_(options), tensor_(tensor_options) {}

  /// Makes the set (in set mode); call with the run's streams installed.
  void make_set() {
    if (options_.dataset_size() == 0) return;
    std::vector<torch::Tensor> zs, cs;
    for (int64_t done = 0; done < options_.dataset_size(); done += options_.batch_size()) {
      auto [z, c] = pairs(std::min(options_.batch_size(), options_.dataset_size() - done));
      zs.push_back(z);
      cs.push_back(c);
    }
    set_z_ = torch::cat(zs);
    set_c_ = torch::cat(cs);
    cursor_ = options_.dataset_size();
  }

  std::pair<torch::Tensor, torch::Tensor> next() {
    if (options_.dataset_size() == 0) return pairs(options_.batch_size());
    std::vector<torch::Tensor> parts;
    for (int64_t need = options_.batch_size(); need > 0;) {
      if (cursor_ == options_.dataset_size()) {
        order_ = random::randperm(options_.dataset_size(), tensor_.dtype(torch::kLong));
        cursor_ = 0;
      }
      const auto take = std::min(need, options_.dataset_size() - cursor_);
      parts.push_back(order_.narrow(0, cursor_, take));
      cursor_ += take;
      need -= take;
    }
    auto idx = parts.size() == 1 ? parts.front() : torch::cat(parts);
    return {set_z_.index_select(0, idx), set_c_.index_select(0, idx)};
  }

  /// Where a set-mode run is in its epoch, for a checkpoint.
  void save_position(stream_state& s) const {
    if (!order_.defined() || options_.dataset_size() == 0) return;
    s.order = order_;
    s.cursor = cursor_;
  }
  void restore_position(const stream_state& s) {
    if (!s.order.defined()) return;
    order_ = s.order.to(tensor_.device());
    cursor_ = s.cursor;
  }

 private:
  std::pair<torch::Tensor, torch::Tensor> pairs(int64_t n) {
    return make_pairs(translator_, generator_, encoder_, n, tensor_, options_.precision(),
                      /*raw=*/options_.feature_noise() > 0);
  }
  T& translator_;
  G& generator_;
  F& encoder_;
  const translator_training_options& options_;
  torch::TensorOptions tensor_;
  torch::Tensor set_z_, set_c_, order_;
  int64_t cursor_ = 0;
};

/// One training run: the translator's parameters and Adam, the run's seed and
/// streams, the pairs, and what a checkpoint records; `train_translator` and
/// its distributed form drive it step by step.
template <class T, class G, class F, Reducer R>
class training_run {
 public:
  training_run(T& translator, G& generator, F& encoder, const translator_training_options& options, R& reducer)
      : options_((options.validate(), options)),
        reducer_(reducer),
        q_(prepared(translator, generator, encoder)),
        params_(q_.parameters()),
        tensor_(first_options(params_, options)),
        scale_(scale_parameter(q_)),
        adam_(adam_groups()),
        plan_(reducer.agree_plan(
            {!options.resume_from().empty(), !options.checkpoint_path().empty(), options.checkpoint_every()})),
        // In a group only rank 0's file is read: the others may not name one.
        resume_name_(options.resume_from().empty() ? std::string("(rank 0's)") : options.resume_from()),
        resumed_(read_resumed()),
        seed_(resumed_ ? resumed_->seed : reducer.agree_seed(options.seed() ? *options.seed() : draw_seed())),
        stream_(std::optional<uint64_t>(reducer.stream_seed(seed_)), tensor_.device()),
        pairs_(translator, generator, encoder, options, tensor_),
        late_step_(options.steps() >= 10 ? options.steps() * 9 / 10 : options.steps()),
        skipped_(torch::zeros({}, tensor_.dtype(torch::kLong))) {
    pairs_.make_set();
    losses_.reserve(static_cast<size_t>(options.steps()));
    if (resumed_) restore(*resumed_);
    resumed_.reset();
  }

  int64_t first_step() const noexcept { return first_step_; }

  /// Step `step`: one batch, one Adam step at the cosine schedule's rate;
  /// returns its loss.
  torch::Tensor step(int64_t step) {
    const double progress = static_cast<double>(step) / static_cast<double>(options_.steps());
    const double factor =
        (options_.lr_min() + 0.5 * (options_.lr() - options_.lr_min()) * (1.0 + std::cos(std::numbers::pi * progress))) /
        options_.lr();
    auto [z, c] = pairs_.next();
    if (step == 0 && scale_.defined()) {
      torch::NoGradGuard no_grad;
      if (options_.fit_initial_scale()) scale_.copy_(reducer_.std_of(z).clamp_min(1e-6).log().to(scale_.dtype()));
      initial_log_std_ = scale_.detach().clone();
    }
    if (scale_.defined() && step == late_step_) late_log_std_ = scale_.detach().clone();
    if (step >= late_step_) late_reach_ += options_.lr() * factor * options_.scale_lr_factor();
    c = with_training_noise(options_, c, [this](const torch::Tensor& f) { return translator_conditions(q_, f); });
    auto nll = -q_.log_prob(z, c).mean();
    adam_.zero_grad();
    (nll * options_.loss_scale()).backward();
    auto detached = nll.detach();
    reducer_.average(params_, detached);  // one all-reduce when data-parallel
    if (options_.grad_clip() > 0) clip_grad_norm(params_, options_.grad_clip());
    auto ok = torch::isfinite(detached);
    adam_.step(ok, factor);
    skipped_ += (~ok).to(torch::kLong);
    losses_.push_back(detached);
    if ((step + 1) % 100 == 0)  // one host read every 100 steps
      check_skipped(skipped_.item<int64_t>(), step + 1, options_.max_skipped_fraction());
    return detached;
  }

  /// Whether a checkpoint is due after `steps_done` steps (or a stop).
  bool checkpoint_due(int64_t steps_done, bool stop) const {
    return plan_.write &&
           (stop || steps_done == options_.steps() || (plan_.every > 0 && steps_done % plan_.every == 0));
  }

  /// Called by every process (it gathers their streams); the first one writes.
  void save_checkpoint(int64_t steps_done) {
    stream_state mine;
    {
      auto& gen = thread_streams().tensors;
      std::lock_guard<std::mutex> lock(gen.mutex());
      mine.rng = gen.get_state();
    }
    std::ostringstream host;
    host << host_engine();
    mine.host_rng = host.str();
    pairs_.save_position(mine);
    auto streams = reducer_.gather_streams(std::move(mine));
    if (!reducer_.writes()) return;
    checkpoint_state s;
    s.seed = seed_;
    s.step = steps_done;
    s.streams = std::move(streams);
    s.m = adam_.first_moments();
    s.v = adam_.second_moments();
    s.adam_t = adam_.step_count();
    s.losses = loss_history();
    s.skipped = skipped_.item<int64_t>();
    s.initial_log_std = initial_log_std_;
    s.late_log_std = late_log_std_;
    s.late_reach = late_reach_;
    write_checkpoint(options_.checkpoint_path(), options_.record(), q_, s);
  }

  /// The run's report, with a warning when the scale did not learn or had not settled.
  training_report finish() {
    q_.train(false);
    training_report report;
    report.losses = loss_history();
    report.steps_done = static_cast<int64_t>(losses_.size());
    report.skipped_steps = skipped_.item<int64_t>();
    check_skipped(report.skipped_steps, report.steps_done, options_.max_skipped_fraction());
    if (scale_.defined()) describe_scale(report);
    return report;
  }

 private:
  /// The translator, checked against G and f and put in training mode.
  static auto& prepared(T& translator, G& generator, F& encoder) {
    check_translator_fits(translator, unwrap(generator).prior(), encoder, "train_translator");
    unwrap(translator).train(true);
    return unwrap(translator);
  }
  static torch::TensorOptions first_options(const std::vector<torch::Tensor>& params,
                                            const translator_training_options& options) {
    if (params.empty()) fail("train_translator: translator: has no parameters to train");
    auto o = params.front().options().requires_grad(false);
    check_precision(options.precision(), o.device());
    return o;
  }

  /// Two Adam groups: the scale parameter at its own rate, everything else.
  std::vector<adam_group> adam_groups() {
    std::vector<adam_group> groups{{{}, options_.lr()}, {{}, options_.lr() * options_.scale_lr_factor()}};
    for (auto& p : params_) groups[scale_.defined() && p.is_same(scale_) ? 1 : 0].params.push_back(p);
    for (const auto& group : groups) adam_order_.insert(adam_order_.end(), group.params.begin(), group.params.end());
    return groups;
  }

  std::optional<checkpoint_state> read_resumed() {
    if (!plan_.resume) {
      reducer_.start(params_);
      return std::nullopt;
    }
    // The seed is rank 0's to check: the others' are not used.
    return read_checkpoint(reducer_.read_checkpoint(resume_name_), resume_name_, options_.record(),
                           reducer_.writes() ? options_.seed() : std::nullopt, q_, adam_order_, options_.steps(),
                           options_.dataset_size(), reducer_.world_size());
  }

  void restore(const checkpoint_state& r) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      adam_.first_moments()[i].copy_(r.m[i]);
      adam_.second_moments()[i].copy_(r.v[i]);
    }
    adam_.step_count() = r.adam_t.to(tensor_.device(), torch::kFloat64).reshape({});
    const auto& mine = r.streams[static_cast<size_t>(reducer_.rank())];
    restore_streams(mine, thread_streams().tensors, host_engine(), resume_name_, r.libtorch);
    for (int64_t i = 0; i < r.step; ++i) losses_.push_back(r.losses[i].to(tensor_));
    skipped_.fill_(r.skipped);
    if (r.initial_log_std.defined()) initial_log_std_ = r.initial_log_std.to(tensor_);
    if (r.late_log_std.defined()) late_log_std_ = r.late_log_std.to(tensor_);
    late_reach_ = r.late_reach;
    pairs_.restore_position(mine);
    first_step_ = r.step;
  }

  torch::Tensor loss_history() const {
    return losses_.empty() ? torch::empty({0}, torch::kFloat64) : torch::stack(losses_).to(torch::kCPU, torch::kFloat64);
  }

  /// The learned standard deviation's range, and a warning when it did not
  /// move (under 5% in every dimension) or was still moving near the most
  /// Adam could move it since 90% of the run.
  void describe_scale(training_report& report) const {
    torch::NoGradGuard no_grad;
    auto stds = scale_.exp().to(torch::kCPU, torch::kFloat64),
         start = initial_log_std_.exp().to(torch::kCPU, torch::kFloat64);
    report.std_min = stds.min().item<double>();
    report.std_max = stds.max().item<double>();
    report.initial_std_min = start.min().item<double>();
    report.initial_std_max = start.max().item<double>();
    std::ostringstream os;
    if ((scale_ - initial_log_std_).abs().max().item<double>() < std::log(1.05)) {
      os << "the translator's standard deviation barely moved from its start (" << report.initial_std_min << " to "
         << report.initial_std_max << "): raise the learning rate or the steps, or the samples will lack diversity";
    } else if (late_log_std_.defined() && late_reach_ > 0 &&
               (scale_ - late_log_std_).abs().max().item<double>() > 0.5 * late_reach_) {
      os << "the translator's standard deviation was still moving at the learning rate's limit when training "
            "ended (now "
         << report.std_min << " to " << report.std_max << ", started at " << report.initial_std_min << " to "
         << report.initial_std_max << "): raise the learning rate or the steps";
    }
    if (!os.str().empty()) report.warnings.push_back(os.str());
  }

  const translator_training_options& options_;
  R& reducer_;
  unwrapped_t<T>& q_;
  std::vector<torch::Tensor> params_;
  torch::TensorOptions tensor_;
  torch::Tensor scale_;
  std::vector<torch::Tensor> adam_order_{};  ///< the parameters as Adam holds them
  masked_adam adam_;
  checkpoint_plan plan_;
  std::string resume_name_;
  std::optional<checkpoint_state> resumed_;
  uint64_t seed_;
  generator_scope stream_;
  pair_source<T, G, F> pairs_;
  int64_t late_step_;
  double late_reach_ = 0;
  torch::Tensor initial_log_std_{}, late_log_std_{};  ///< the log-std at the start and at 90% of the run
  std::vector<torch::Tensor> losses_{};
  torch::Tensor skipped_;
  int64_t first_step_ = 0;
};

template <class T, class G, class F, Reducer R, class... Cbs>
training_report train_translator_impl(T& translator, G& generator, F& encoder,
                                      const translator_training_options& options, R& reducer, Cbs&... callbacks) {
  torch::AutoGradMode grad_mode(true);
  training_run run(translator, generator, encoder, options, reducer);
  detail::notify_begin(run_info{"train", options.steps(), run.first_step()}, callbacks...);
  for (int64_t step = run.first_step(); step < options.steps(); ++step) {
    const auto loss = run.step(step);
    const bool stop = reducer.stop(detail::notify_step(step_info{"train", step, options.steps(), loss}, callbacks...));
    if (run.checkpoint_due(step + 1, stop)) run.save_checkpoint(step + 1);
    if (stop) break;
  }
  if (run.first_step() == options.steps() && run.checkpoint_due(options.steps(), true))
    run.save_checkpoint(run.first_step());
  auto report = run.finish();
  detail::notify_end(run_info{"train", options.steps(), report.steps_done}, callbacks...);
  return report;
}
}  // namespace detail

}  // namespace tr0n
