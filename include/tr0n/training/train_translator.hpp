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
  /// Std of Gaussian noise added to the conditions during training (the
  /// paper's bridge from CLIP image embeddings to text embeddings); 0 = none.
  TORCH_ARG(double, condition_noise) = 0.0;
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
    if (!(condition_noise_ >= 0) || !std::isfinite(condition_noise_))
      detail::fail("translator_training_options: condition_noise: expected a finite value >= 0, got ",
                   condition_noise_);
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
template <class T, class G, class F>
std::pair<torch::Tensor, torch::Tensor> make_pairs(T& translator, G& generator, F& encoder, int64_t n,
                                                   torch::TensorOptions options, precision compute = precision::fp32) {
  torch::NoGradGuard no_grad;
  auto& g = unwrap(generator);
  auto z = g.prior().sample(n, options);
  auto features = forward_in(compute, unwrap(encoder), forward_in(compute, g, z));
  const auto width = unwrap(translator).condition_dim();
  if (features.dim() != 2 || features.size(1) != width)
    fail("train_translator: encoder: produced features of shape ", shape_of(features),
         " but the translator expects conditions of width ", width);
  return {z, translator_conditions(translator, features).to(options.dtype())};
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
/// How one process's training cooperates with others (data-parallel training,
/// `tr0n/distributed/`); alone, it does nothing.
/// Whether a run resumes and writes checkpoints, and how often.
struct checkpoint_plan {
  bool resume = false, write = false;
  int64_t every = 0;
};

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

  static std::string read_file(const std::string& path) {
    if (!std::filesystem::exists(path)) detail::fail("train_translator: resume_from: ", path, ": file not found");
    std::ifstream in(path, std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in.good() && !in.eof()) detail::fail("train_translator: resume_from: ", path, ": cannot be read");
    return bytes;
  }
};

template <class T, class G, class F, class Reducer, class... Cbs>
training_report train_translator_impl(T& translator, G& generator, F& encoder,
                                      const translator_training_options& options, Reducer& reducer,
                                      Cbs&... callbacks);
}  // namespace detail

template <TrainableTranslator T, Generator G, Encoder F, Callback... Cbs>
training_report train_translator(T& translator, G& generator, F& encoder,
                                 const translator_training_options& options, Cbs&&... callbacks) {
  detail::no_reducer alone;
  return detail::train_translator_impl(translator, generator, encoder, options, alone, callbacks...);
}

namespace detail {
template <class T, class G, class F, class Reducer, class... Cbs>
training_report train_translator_impl(T& translator, G& generator, F& encoder,
                                      const translator_training_options& options, Reducer& reducer,
                                      Cbs&... callbacks) {
  options.validate();
  auto& q = detail::unwrap(translator);
  detail::check_translator_fits(translator, detail::unwrap(generator).prior(), encoder, "train_translator");
  std::vector<torch::Tensor> params = q.parameters();
  if (params.empty()) detail::fail("train_translator: translator: has no parameters to train");
  const torch::TensorOptions tensor_options = params.front().options().requires_grad(false);
  check_precision(options.precision(), tensor_options.device());

  torch::AutoGradMode grad_mode(true);
  q.train(true);
  torch::Tensor scale = detail::scale_parameter(q);
  std::vector<detail::adam_group> groups{{{}, options.lr()}, {{}, options.lr() * options.scale_lr_factor()}};
  for (auto& p : params) groups[scale.defined() && p.is_same(scale) ? 1 : 0].params.push_back(p);
  std::vector<torch::Tensor> adam_order;  // the parameters as Adam holds them
  for (const auto& group : groups) adam_order.insert(adam_order.end(), group.params.begin(), group.params.end());
  detail::masked_adam adam(std::move(groups));

  const auto plan = reducer.agree_plan(
      {!options.resume_from().empty(), !options.checkpoint_path().empty(), options.checkpoint_every()});
  // In a group only rank 0's file is read: the others may not name one.
  const std::string resume_name = options.resume_from().empty() ? std::string("(rank 0's)") : options.resume_from();
  std::optional<detail::checkpoint_state> resumed;
  if (plan.resume) {
    const auto& path = resume_name;
    // The seed is rank 0's to check: the others' are not used.
    resumed = detail::read_checkpoint(reducer.read_checkpoint(path), path, options.record(),
                                      reducer.writes() ? options.seed() : std::nullopt, q, adam_order, options.steps(),
                                      options.dataset_size(), reducer.world_size());
  } else {
    reducer.start(params);
  }
  // The run's seed, drawn once when unset (a checkpoint records it).
  const uint64_t seed = resumed ? resumed->seed : reducer.agree_seed(options.seed() ? *options.seed() : draw_seed());
  generator_scope stream(std::optional<uint64_t>(reducer.stream_seed(seed)), tensor_options.device());

  // Synthetic set mode: pairs made once, a fresh device permutation every epoch.
  torch::Tensor set_z, set_c, order;
  int64_t cursor = 0;
  if (options.dataset_size() > 0) {
    std::vector<torch::Tensor> zs, cs;
    for (int64_t done = 0; done < options.dataset_size(); done += options.batch_size()) {
      const auto n = std::min(options.batch_size(), options.dataset_size() - done);
      auto [z, c] = detail::make_pairs(translator, generator, encoder, n, tensor_options, options.precision());
      zs.push_back(z);
      cs.push_back(c);
    }
    set_z = torch::cat(zs);
    set_c = torch::cat(cs);
    cursor = options.dataset_size();
  }
  auto next_batch = [&]() -> std::pair<torch::Tensor, torch::Tensor> {
    if (options.dataset_size() == 0)
      return detail::make_pairs(translator, generator, encoder, options.batch_size(), tensor_options,
                                options.precision());
    std::vector<torch::Tensor> parts;
    for (int64_t need = options.batch_size(); need > 0;) {
      if (cursor == options.dataset_size()) {
        order = random::randperm(options.dataset_size(), tensor_options.dtype(torch::kLong));
        cursor = 0;
      }
      const auto take = std::min(need, options.dataset_size() - cursor);
      parts.push_back(order.narrow(0, cursor, take));
      cursor += take;
      need -= take;
    }
    auto idx = parts.size() == 1 ? parts.front() : torch::cat(parts);
    return {set_z.index_select(0, idx), set_c.index_select(0, idx)};
  };

  // The log-std at 90% of the run, and how far Adam could move it since
  // (about its learning rate per step): moving near that limit at the end
  // means the scale had not converged.
  torch::Tensor initial_log_std, late_log_std;
  const int64_t late_step = options.steps() >= 10 ? options.steps() * 9 / 10 : options.steps();
  double late_reach = 0;
  std::vector<torch::Tensor> losses;
  losses.reserve(static_cast<size_t>(options.steps()));
  torch::Tensor skipped = torch::zeros({}, tensor_options.dtype(torch::kLong));
  int64_t first_step = 0;
  if (resumed) {
    auto& r = *resumed;
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      adam.first_moments()[i].copy_(r.m[i]);
      adam.second_moments()[i].copy_(r.v[i]);
    }
    adam.step_count() = r.adam_t.to(tensor_options.device(), torch::kFloat64).reshape({});
    auto& streams = detail::thread_streams();
    const auto& mine = r.streams[static_cast<size_t>(reducer.rank())];
    detail::restore_streams(mine, streams.tensors, detail::host_engine(), resume_name, r.libtorch);
    for (int64_t i = 0; i < r.step; ++i) losses.push_back(r.losses[i].to(tensor_options));
    skipped.fill_(r.skipped);
    if (r.initial_log_std.defined()) initial_log_std = r.initial_log_std.to(tensor_options);
    if (r.late_log_std.defined()) late_log_std = r.late_log_std.to(tensor_options);
    late_reach = r.late_reach;
    if (mine.order.defined()) {
      order = mine.order.to(tensor_options.device());
      cursor = mine.cursor;
    }
    first_step = r.step;
  }
  // Called by every process (it gathers their streams); the first one writes.
  auto save_checkpoint = [&](int64_t steps_done) {
    detail::stream_state mine;
    {
      auto& gen = detail::thread_streams().tensors;
      std::lock_guard<std::mutex> lock(gen.mutex());
      mine.rng = gen.get_state();
    }
    std::ostringstream host;
    host << detail::host_engine();
    mine.host_rng = host.str();
    if (order.defined() && options.dataset_size() > 0) {
      mine.order = order;
      mine.cursor = cursor;
    }
    auto streams = reducer.gather_streams(std::move(mine));
    if (!reducer.writes()) return;
    detail::checkpoint_state s;
    s.seed = seed;
    s.step = steps_done;
    s.streams = std::move(streams);
    s.m = adam.first_moments();
    s.v = adam.second_moments();
    s.adam_t = adam.step_count();
    s.losses = losses.empty() ? torch::empty({0}, torch::kFloat64) : torch::stack(losses).to(torch::kCPU, torch::kFloat64);
    s.skipped = skipped.item<int64_t>();
    s.initial_log_std = initial_log_std;
    s.late_log_std = late_log_std;
    s.late_reach = late_reach;
    detail::write_checkpoint(options.checkpoint_path(), options.record(), q, s);
  };

  const run_info begin{"train", options.steps(), first_step};
  detail::notify_begin(begin, callbacks...);
  for (int64_t step = first_step; step < options.steps(); ++step) {
    const double progress = static_cast<double>(step) / static_cast<double>(options.steps());
    const double factor = (options.lr_min() + 0.5 * (options.lr() - options.lr_min()) *
                                                  (1.0 + std::cos(std::numbers::pi * progress))) /
                          options.lr();

    auto [z, c] = next_batch();
    if (step == 0 && scale.defined()) {
      torch::NoGradGuard no_grad;
      if (options.fit_initial_scale()) scale.copy_(reducer.std_of(z).clamp_min(1e-6).log().to(scale.dtype()));
      initial_log_std = scale.detach().clone();
    }
    if (scale.defined() && step == late_step) late_log_std = scale.detach().clone();
    if (step >= late_step) late_reach += options.lr() * factor * options.scale_lr_factor();
    if (options.condition_noise() > 0) c = c + options.condition_noise() * random::randn_like(c);
    auto nll = -q.log_prob(z, c).mean();
    adam.zero_grad();
    (nll * options.loss_scale()).backward();
    auto detached = nll.detach();
    reducer.average(params, detached);  // one all-reduce when data-parallel
    if (options.grad_clip() > 0) detail::clip_grad_norm(params, options.grad_clip());
    auto ok = torch::isfinite(detached);
    adam.step(ok, factor);
    skipped += (~ok).to(torch::kLong);

    losses.push_back(detached);
    if ((step + 1) % 100 == 0)  // one host read every 100 steps
      detail::check_skipped(skipped.item<int64_t>(), step + 1, options.max_skipped_fraction());
    const bool stop = reducer.stop(detail::notify_step(step_info{"train", step, options.steps(), detached}, callbacks...));
    if (plan.write && (stop || step + 1 == options.steps() || (plan.every > 0 && (step + 1) % plan.every == 0)))
      save_checkpoint(step + 1);
    if (stop) break;
  }
  if (first_step == options.steps() && plan.write)
    save_checkpoint(first_step);
  q.train(false);
  training_report report;
  report.losses = losses.empty() ? torch::empty({0}, torch::kFloat64)
                                 : torch::stack(losses).to(torch::kCPU, torch::kFloat64);
  report.steps_done = static_cast<int64_t>(losses.size());
  report.skipped_steps = skipped.item<int64_t>();
  detail::check_skipped(report.skipped_steps, report.steps_done, options.max_skipped_fraction());
  if (scale.defined()) {
    torch::NoGradGuard no_grad;
    auto stds = scale.exp().to(torch::kCPU, torch::kFloat64), start = initial_log_std.exp().to(torch::kCPU, torch::kFloat64);
    report.std_min = stds.min().item<double>();
    report.std_max = stds.max().item<double>();
    report.initial_std_min = start.min().item<double>();
    report.initial_std_max = start.max().item<double>();
    std::ostringstream os;
    if ((scale - initial_log_std).abs().max().item<double>() < std::log(1.05)) {
      // Under 5% of change in every dimension: the scale did not learn.
      os << "the translator's standard deviation barely moved from its start (" << report.initial_std_min << " to "
         << report.initial_std_max << "): raise the learning rate or the steps, or the samples will lack diversity";
    } else if (late_log_std.defined() && late_reach > 0 &&
               (scale - late_log_std).abs().max().item<double>() > 0.5 * late_reach) {
      os << "the translator's standard deviation was still moving at the learning rate's limit when training "
            "ended (now "
         << report.std_min << " to " << report.std_max << ", started at " << report.initial_std_min << " to "
         << report.initial_std_max << "): raise the learning rate or the steps";
    }
    if (!os.str().empty()) report.warnings.push_back(os.str());
  }
  detail::notify_end(run_info{"train", options.steps(), report.steps_done}, callbacks...);
  return report;
}
}  // namespace detail

}  // namespace tr0n
