#pragma once
/// \file
/// `sampler`: the paper's Algorithm 2. Chains start where the initialisation
/// policy puts them and take `T` steps of Langevin dynamics on the energy,
///
///     z <- z - eta_t * g_t + sigma_t * eps,   g_t = grad_z E(z, c) (or its momentum average),
///
/// with optional per-sample gradient-norm clipping, per-coordinate step-size
/// multipliers (`step_scale`: a joint prior's parts at their own rates), and
/// clamping to the prior's box (`BoxedPrior`) or per-coordinate bounds
/// (`CoordinateBoxedPrior`). Generator, encoder, energy, translator and policies are template
/// parameters: no virtual call and no type erasure in the step loop, and no
/// host synchronisation there unless a callback reads values.
///
/// Starts are clamped into a box prior's support before the first
/// evaluation. A chain whose energy, gradient or latent becomes non-finite is
/// flagged in `ok` and frozen: where it was at the last failure check before
/// (`check_every`, every 10 steps by default; every step, and its auxiliary
/// state too, for policies with auxiliary state).
///
/// Memory: `max_batch` runs the chains in chunks, of whole stream blocks or,
/// below one block, of parts of one, with results that do not depend on the
/// chunk size; `sample_chunks` hands each chunk's results over instead of
/// keeping every `x`. `tr0n/runtime/memory_probe.hpp` sizes `max_batch` for
/// a memory budget from what one chain measurably takes.
/// Every run draws from its own generator (`tr0n/random.hpp`), seeded from the
/// options, and leaves LibTorch's global one alone.
///
/// ```
/// tr0n::sampler s(generator, classifier, tr0n::cross_entropy{}, translator,
///                 tr0n::sampler_options().steps(20).momentum(0.5),
///                 tr0n::init::translator_sample{}, tr0n::cosine_decay{.eta0 = 0.1},
///                 tr0n::fixed_noise{.std = 0.005});
/// auto r = s.sample(tr0n::one_hot_conditions(labels, 10), /*n=*/8, tr0n::progress_bar("sampling"));
/// // r.z [8N, d], r.x = G(r.z), r.energy [8N], r.ok [8N]
/// ```
#include <tr0n/concepts/callback.hpp>
#include <tr0n/concepts/encoder.hpp>
#include <tr0n/concepts/energy.hpp>
#include <tr0n/concepts/generator.hpp>
#include <tr0n/concepts/init_policy.hpp>
#include <tr0n/concepts/noise_policy.hpp>
#include <tr0n/concepts/step_schedule.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/concepts/translator.hpp>
#include <tr0n/detail/blocks.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/fit.hpp>
#include <tr0n/runtime/precision.hpp>
#include <tr0n/detail/math.hpp>
#include <tr0n/detail/unwrap.hpp>
#include <tr0n/energies/context.hpp>
#include <tr0n/init/prior.hpp>
#include <tr0n/init/translator_sample.hpp>
#include <tr0n/priors/joint.hpp>
#include <tr0n/random.hpp>
#include <tr0n/schedules/noise.hpp>
#include <tr0n/sampling/result.hpp>
#include <tr0n/schedules/step_schedules.hpp>
#include <tr0n/detail/hooks.hpp>

#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <c10/util/SmallVector.h>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

namespace tr0n {

/// Stands in for the translator of a sampler that only starts from the prior.
struct no_translator {};

struct sampler_options {
  /// Langevin steps `T` (0: return the starts as they are).
  TORCH_ARG(int64_t, steps) = 0;
  /// Heavy-ball momentum on the gradient, in [0, 1) (the official code: 0.99).
  TORCH_ARG(double, momentum) = 0.0;
  /// Per-sample gradient-norm clipping; 0 turns it off.
  TORCH_ARG(double, grad_clip) = 0.0;
  /// Clamp latents into the prior's box after each step (box priors only).
  TORCH_ARG(bool, clamp_to_box) = true;
  /// Keep every step's per-sample energies in `sample_result::trace`.
  TORCH_ARG(bool, record_trace) = false;
  /// Most chains evaluated in one batch (0: all `N * n` at once). Bounds
  /// memory, down to one chain a batch. From one stream block up, chunks are
  /// whole blocks (`max_batch` rounded down to a multiple of `stream_block`);
  /// below, each block is cut into chunks of `max_batch` chains. Either way
  /// every chain draws the same random numbers, so results do not depend on
  /// the chunk size (up to the rounding of batched kernels; the starts of the
  /// prior are bitwise the same).
  TORCH_ARG(int64_t, max_batch) = 0;
  /// Chains per random stream: each block of this many chains draws from a
  /// generator of its own, seeded from the run's seed and the block's index
  /// (`tr0n/random.hpp`). Changing it changes the draws; `max_batch` does not.
  TORCH_ARG(int64_t, stream_block) = 64;
  /// Per-coordinate multipliers `[d]` (> 0) of the step size: coordinate `i`
  /// moves by `eta_t * step_scale[i] * g_t[i]` (the noise is unscaled).
  /// Undefined: 1 everywhere. The official BigGAN code moves `z` and the class
  /// embedding `y` at separate rates; with a `joint_prior`, give each part's
  /// multiplier on its coordinates (`tr0n::part_scales`).
  TORCH_ARG(torch::Tensor, step_scale) = {};
  /// Test for failed chains every `k` steps (and after the last). A chain
  /// fails when its energy, gradient or latent becomes non-finite at any step
  /// (the `ok` flags are the same for every `k`); it is frozen where it was at
  /// the check before, and until the next check its energies passed to
  /// callbacks may be NaN. Policies with auxiliary state check every step.
  /// Each check costs a few small kernels; at 1 chain and a small MLP they
  /// add about 15% to a step.
  TORCH_ARG(int64_t, check_every) = 10;
  /// The index of this run's first stream block in a larger run: a run of
  /// chains `[k * stream_block, ...)` of that run, with `first_block(k)`,
  /// draws what they draw there (how sharded sampling splits a run).
  TORCH_ARG(int64_t, first_block) = 0;
  /// Makes a run reproducible. The run draws from its own generator and
  /// leaves LibTorch's global one alone (unseeded runs take one seed from it).
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// What the generator and the encoder compute in (`tr0n/runtime/precision.hpp`):
  /// `bf16` runs them under autocast; latents, gradients as applied, energies
  /// and the update stay float32. A device that cannot run it is refused.
  TORCH_ARG(tr0n::precision, precision) = tr0n::precision::fp32;

 public:
  void validate() const {
    if (steps_ < 0) detail::fail("sampler_options: steps: expected T >= 0, got ", steps_);
    if (!(momentum_ >= 0 && momentum_ < 1))
      detail::fail("sampler_options: momentum: expected a value in [0, 1), got ", momentum_);
    if (check_every_ < 1) detail::fail("sampler_options: check_every: expected steps between checks >= 1, got ", check_every_);
    if (first_block_ < 0) detail::fail("sampler_options: first_block: expected a block index >= 0, got ", first_block_);
    if (max_batch_ < 0) detail::fail("sampler_options: max_batch: expected chains per batch >= 0 (0 = all), got ", max_batch_);
    if (stream_block_ < 1) detail::fail("sampler_options: stream_block: expected chains per stream >= 1, got ", stream_block_);
    if (step_scale_.defined()) {
      if (step_scale_.dim() != 1 || !step_scale_.is_floating_point())
        detail::fail("sampler_options: step_scale: expected a floating tensor [d], got ", detail::shape_of(step_scale_));
      if (!(step_scale_.gt(0).all().item<bool>() && torch::isfinite(step_scale_).all().item<bool>()))
        detail::fail("sampler_options: step_scale: expected finite multipliers > 0");
    }
    if (!(grad_clip_ >= 0) || !std::isfinite(grad_clip_))
      detail::fail("sampler_options: grad_clip: expected a finite value >= 0 (0 = off), got ", grad_clip_);
  }
};

namespace detail {
struct no_sink {};
/// A run's step multipliers and per-coordinate bounds, on its device.
struct step_tensors {
  torch::Tensor scale, lo, hi;
};
template <class T>
using default_init_t = std::conditional_t<std::is_same_v<T, no_translator>, init::prior, init::translator_sample>;
}  // namespace detail

template <Generator G, Encoder F, class E, class T = no_translator, class Init = detail::default_init_t<T>,
          StepSchedule S = constant_step, NoisePolicy N = langevin_noise>
  requires(Translator<T> || std::same_as<T, no_translator>)
class sampler {
 public:
  using generator_type = G;
  using encoder_type = F;
  using energy_type = E;
  using translator_type = T;
  using init_policy_type = Init;
  using schedule_type = S;
  using noise_type = N;
  using prior_type = prior_t<G>;
  using context_type = energy_context<prior_type, F>;

  static_assert(EnergyFor<E, context_type>,
                "tr0n::sampler: E must model Energy for this generator and encoder "
                "(opt in with `using tr0n_tag = tr0n::energy_tag;`, and `e(ctx)` must return a "
                "[B] tensor; latent_prior needs a prior with log_prob)");
  static_assert(!needs_translator_v<Init> || Translator<T>,
                "tr0n::sampler: this initialisation policy needs a translator; "
                "pass one, or use tr0n::init::prior");
  static_assert(!needs_mixture_v<Init> || MixtureTranslator<T>,
                "tr0n::sampler: this initialisation policy needs the translator's mixture components "
                "(a MixtureTranslator, with mixture(c)); use tr0n::init::translator_sample");

  sampler(G generator, F encoder, E energy, T translator, sampler_options options = {}, Init init = {},
          S schedule = {}, N noise = {})
      : generator_(std::move(generator)),
        encoder_(std::move(encoder)),
        energy_(std::move(energy)),
        translator_(std::move(translator)),
        options_(std::move(options)),
        init_(std::move(init)),
        schedule_(std::move(schedule)),
        noise_(std::move(noise)) {
    options_.validate();
    check_step_scale();
    if constexpr (Translator<T>) detail::check_translator_fits(translator_, prior(), encoder_, "sampler");
  }

  /// A sampler without a translator (chains start from the prior).
  sampler(G generator, F encoder, E energy, sampler_options options = {}, Init init = {}, S schedule = {},
          N noise = {})
    requires std::same_as<T, no_translator>
      : sampler(std::move(generator), std::move(encoder), std::move(energy), no_translator{}, std::move(options),
                std::move(init), std::move(schedule), std::move(noise)) {}

  G& generator() noexcept { return generator_; }
  F& encoder() noexcept { return encoder_; }
  const E& energy() const noexcept { return energy_; }
  T& translator() noexcept { return translator_; }
  const prior_type& prior() const { return detail::unwrap(generator_).prior(); }
  const sampler_options& options() const noexcept { return options_; }
  const Init& init_policy() const noexcept { return init_; }
  const S& schedule() const noexcept { return schedule_; }
  const N& noise() const noexcept { return noise_; }

  /// Replaces the options (validated), e.g. to run the same sampler for several `T`.
  void set_options(sampler_options options) {
    options.validate();
    options_ = std::move(options);
    check_step_scale();
  }

  /// Per-row energies `[M]` of latents `z` `[M, d]` against conditions `[M, C]`
  /// (or `[M]` labels), differentiable when grad mode is on.
  torch::Tensor evaluate(const torch::Tensor& z, const torch::Tensor& conditions) {
    detail::check_matrix(z, "evaluate: z", prior().dim(), "the generator's latent dim");
    ++energy_evals_;
    auto e = energy_of(z, conditions);
    check_energy(e, z.size(0));
    return e;
  }

  /// The checks `sample` runs on its arguments: throws as `sample` would.
  void check(const torch::Tensor& conditions, int64_t n) { check_call(conditions, n); }

  /// `n` samples for each of the `N` conditions `[N, C]`.
  template <Callback... Cbs>
  sample_result sample(const torch::Tensor& conditions, int64_t n, Cbs&&... callbacks) {
    return run(conditions, n, static_cast<detail::no_sink*>(nullptr), callbacks...);
  }

  /// Like `sample`, but hands each chunk's results to `sink(const sample_chunk&)`
  /// as soon as they are final, and keeps no `x`: the returned result has `z`,
  /// `energy` and `ok` for every chain and an undefined `x`. With `max_batch`,
  /// memory stays bounded by one chunk whatever the number of samples.
  template <class Sink, Callback... Cbs>
    requires std::invocable<Sink&, const sample_chunk&>
  sample_result sample_chunks(const torch::Tensor& conditions, int64_t n, Sink&& sink, Cbs&&... callbacks) {
    return run(conditions, n, &sink, callbacks...);
  }

 private:
  template <class Sink, class... Cbs>
  sample_result run(const torch::Tensor& conditions, int64_t n, Sink* sink, Cbs&... callbacks) {
    static_assert(InitPolicy<Init, sampler>,
                  "tr0n::sampler: Init must model InitPolicy (name, start(sampler, c) returning a "
                  "state with .leaf, latent(state))");
    check_call(conditions, n);
    check_precision(options_.precision(), conditions.device());
    torch::AutoGradMode grad_mode(true);
    run_state run(n == 1 ? conditions : conditions.repeat_interleave(n, 0), options_,
                  options_.seed() ? *options_.seed() : draw_seed());
    place_step_tensors(conditions.device());
    start_chunks(run);
    detail::notify_begin(run_info{"sample", options_.steps(), 0}, callbacks...);
    const int64_t t = run_steps(run, callbacks...);
    energy_evals_ += t;
    for (auto& k : run.chunks) settle(k, k.state->leaf);  // a run stopped between checks
    auto r = finish(run, t, sink);
    r.steps_run = r.grad_evals = t;
    r.energy_evals = energy_evals_;
    detail::notify_end(run_info{"sample", options_.steps(), t}, callbacks...);
    return r;
  }

  using state_type = decltype(std::declval<Init&>().start(std::declval<sampler&>(), std::declval<const torch::Tensor&>()));

  /// Consecutive blocks of chains evaluated as one batch, or part of one
  /// block, with their state.
  struct chunk {
    int64_t first;  ///< the chunk's first chain
    int64_t first_block;
    int64_t blocks;
    torch::Tensor c;       ///< the chunk's conditions
    torch::Tensor failed;  ///< a view of the run's flags
    std::mt19937_64 host;  ///< the chunk's host engine
    int64_t offset = 0;       ///< part of a block: where its rows start in the block
    int64_t block_size = 0;   ///< part of a block: the block's chains (0 for whole blocks)
    at::Generator own{};      ///< part of a block: its copy of the block's generator
    std::optional<state_type> state{};
    torch::Tensor velocity{};
    torch::Tensor checked{};             ///< the latents at the last check (a finite row stays there)
    std::vector<torch::Tensor> pending{};  ///< per-row sums since the last check
  };

  /// One call's chains: `m` rows of conditions, in stream blocks of `block`
  /// chains (each with its own generator), grouped `per_chunk` blocks a chunk,
  /// or cut into chunks of `part_rows` chains when a block does not fit.
  struct run_state {
    run_state(torch::Tensor conditions, const sampler_options& o, uint64_t run_seed)
        : c(std::move(conditions)), m(c.size(0)), block(o.stream_block()), blocks((m + block - 1) / block),
          per_chunk(o.max_batch() > 0 ? std::max<int64_t>(1, o.max_batch() / block) : blocks),
          part_rows(o.max_batch() > 0 && o.max_batch() < block ? o.max_batch() : 0), seed(run_seed),
          failed(torch::zeros({m}, c.options().dtype(torch::kBool))) {
      streams.reserve(static_cast<size_t>(blocks));
      for (int64_t b = 0; b < blocks; ++b)
        streams.push_back(make_generator(block_seed(seed, static_cast<uint64_t>(o.first_block() + b)), c.device()));
    }
    torch::Tensor c;  ///< `[M, C]`
    int64_t m, block, blocks, per_chunk, part_rows;
    uint64_t seed;
    torch::Tensor failed;  ///< `[M]`: chains that became non-finite
    std::vector<at::Generator> streams;
    std::vector<chunk> chunks{};
    std::vector<torch::Tensor> trace{};
    std::optional<chain_streams_scope> whole{};  ///< one chunk: its streams stay installed

    /// Installs chunk `k`'s streams until the scope ends.
    chain_streams_scope streams_of(chunk& k) {
      return chain_streams_scope(generators_of(k), k.blocks, block, k.c.size(0), k.host, k.offset, k.block_size);
    }
    /// The same, into an optional scope.
    void install(std::optional<chain_streams_scope>& scope, chunk& k) {
      scope.emplace(generators_of(k), k.blocks, block, k.c.size(0), k.host, k.offset, k.block_size);
    }
    const at::Generator* generators_of(const chunk& k) const {
      return k.block_size > 0 ? &k.own : &streams[static_cast<size_t>(k.first_block)];
    }
  };

  /// Splits the run into chunks and starts each from the init policy, with its
  /// streams; energy_evals counts the first chunk's start (it is per chain).
  void start_chunks(run_state& run) {
    energy_evals_ = 0;
    int64_t start_evals = 0;
    auto start = [&](chunk k) {
      {
        const auto scope = run.streams_of(k);
        k.state.emplace(init_.start(*this, k.c));
      }
      k.state->leaf = clamp_to_box(k.state->leaf.detach());
      if (run.chunks.empty()) start_evals = energy_evals_;
      run.chunks.push_back(std::move(k));
    };
    auto host_of = [&](int64_t b) {
      return std::mt19937_64(block_seed(run.seed, static_cast<uint64_t>(options_.first_block() + b)));
    };
    if (run.part_rows > 0) {  // chunks within blocks, each with a fresh copy of its block's generator
      for (const auto blk : detail::block_spans(run.m, run.block)) {
        const auto seed = block_seed(run.seed, static_cast<uint64_t>(options_.first_block() + blk.index));
        for (const auto part : detail::block_spans(blk.count, run.part_rows)) {
          const int64_t first = blk.first + part.first;
          const bool whole = part.count == blk.count;
          start(chunk{first, blk.index, 1, run.c.narrow(0, first, part.count), run.failed.narrow(0, first, part.count),
                      host_of(blk.index), whole ? 0 : part.first, whole ? 0 : blk.count,
                      whole ? at::Generator() : make_generator(seed, run.c.device())});
        }
      }
    } else {
      for (const auto span : detail::block_spans(run.m, run.per_chunk * run.block)) {
        const int64_t b = span.index * run.per_chunk;  // the chunk's first stream block
        start(chunk{span.first, b, std::min(run.per_chunk, run.blocks - b), run.c.narrow(0, span.first, span.count),
                    run.failed.narrow(0, span.first, span.count), host_of(b)});
      }
    }
    energy_evals_ = start_evals;
    if (run.chunks.size() == 1) run.install(run.whole, run.chunks.front());
  }

  /// The step loop; returns the steps run (fewer than `steps` when a callback stops it).
  template <class... Cbs>
  int64_t run_steps(run_state& run, Cbs&... callbacks) {
    const auto total = options_.steps();
    if (options_.record_trace()) run.trace.reserve(static_cast<size_t>(total + 1));
    for (int64_t t = 0; t < total; ++t) {
      const double eta = schedule_.step_size(t, total);
      const double sigma = noise_.sigma(eta);
      torch::Tensor e_now;
      if (run.whole) {
        e_now = step(run.chunks.front(), t, eta, sigma);
      } else {
        e_now = torch::empty({run.m}, run.c.options());
        for (auto& k : run.chunks) {
          const auto scope = run.streams_of(k);
          e_now.narrow(0, k.first, k.c.size(0)).copy_(step(k, t, eta, sigma));
        }
      }
      if (options_.record_trace()) run.trace.push_back(e_now);
      if (detail::notify_step(step_info{"sample", t, total, e_now}, callbacks...)) return t + 1;
    }
    return total;
  }

  /// The final evaluation, chunk by chunk: each chunk's results go straight into
  /// the run's (no second copy of x), or to `sink` as soon as they are final.
  template <class Sink>
  sample_result finish(run_state& run, int64_t t, Sink* sink) {
    constexpr bool streaming = !std::is_same_v<Sink, detail::no_sink>;
    sample_result r;
    {
      torch::NoGradGuard no_grad;
      for (auto& k : run.chunks) {
        std::optional<chain_streams_scope> scope;  // energies may draw (augmentations)
        if (!run.whole) run.install(scope, k);
        auto z = init_.latent(*k.state).detach();
        auto x = generate(z);
        context_type ctx(z, x, k.c, prior(), encoder_, options_.precision());
        auto e = energy_(ctx).detach();
        k.state.reset();  // frees the chunk's state before the next chunk's evaluation
        const auto first = k.first;
        if constexpr (streaming) {
          (*sink)(sample_chunk{first, z, x, e, finite_ok(t, z, e, k.failed)});
          x = torch::Tensor();  // the run keeps no x
        }
        if (run.whole) {
          r.z = std::move(z), r.x = std::move(x), r.energy = std::move(e);
          break;
        }
        if (!r.z.defined()) {
          r.z = rows_like(z, run.m), r.energy = rows_like(e, run.m);
          if constexpr (!streaming) r.x = rows_like(x, run.m);
        }
        r.z.narrow(0, first, k.c.size(0)).copy_(z);
        if constexpr (!streaming) r.x.narrow(0, first, k.c.size(0)).copy_(x);
        r.energy.narrow(0, first, k.c.size(0)).copy_(e);
      }
      ++energy_evals_;  // the final evaluation, once per chain
    }
    r.ok = finite_ok(t, r.z, r.energy, run.failed);
    if (options_.record_trace()) {
      run.trace.push_back(r.energy);
      r.trace = torch::stack(run.trace);
    }
    return r;
  }

  /// Chains that stayed finite: not failed at a check, and with a finite final
  /// energy (the last check covered the latents after a step; with no step, the
  /// start's latents are tested here too).
  static torch::Tensor finite_ok(int64_t t, const torch::Tensor& z, const torch::Tensor& e, const torch::Tensor& failed) {
    const auto sums = t > 0 ? e.mul(0) : (z.flatten(1).sum(1) + e).mul_(0);
    return sums.eq(0).logical_and_(failed.logical_not());
  }

  /// An uninitialised tensor like `t` with `m` rows.
  static torch::Tensor rows_like(const torch::Tensor& t, int64_t m) {
    auto shape = t.sizes().vec();
    shape[0] = m;
    return torch::empty(shape, t.options());
  }

  /// Per-row energies without the checks of `evaluate` (the step loop's shapes are known).
  torch::Tensor energy_of(const torch::Tensor& z, const torch::Tensor& c) {
    auto x = generate(z);
    context_type ctx(z, x, c, prior(), encoder_, options_.precision());
    return energy_(ctx);
  }

  /// `G(z)` in the run's precision, as float32.
  torch::Tensor generate(const torch::Tensor& z) {
    return detail::forward_in(options_.precision(), detail::unwrap(generator_), z);
  }

  /// Step `t` of chunk `k`, with its streams installed; returns its energies before the step. Failed
  /// chains are found and frozen by `settle`, every `check_every` steps.
  torch::Tensor step(chunk& k, int64_t t, double eta, double sigma) {
    const int64_t rows = k.c.size(0);
    auto& state = *k.state;
    torch::Tensor& leaf = state.leaf;
    leaf = leaf.detach().requires_grad_(true);
    torch::Tensor e, g, ga;
    if constexpr (InitPolicyWithAux<Init, state_type>) {
      // The policy's optimiser holds this very tensor: keep it a leaf, never replace it.
      auto& aux = init_.aux(state);
      if (!aux.requires_grad()) aux.requires_grad_(true);
      e = energy_of(init_.latent(state), k.c);
      check_energy(e, rows);
      auto grads = torch::autograd::grad({e.sum()}, {leaf, aux}, {}, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
      g = std::move(grads[0]);
      ga = std::move(grads[1]);
    } else {
      e = energy_of(init_.latent(state), k.c);
      check_energy(e, rows);
      g = std::move(torch::autograd::grad({e.sum()}, {leaf}, {}, /*retain_graph=*/false,
                                          /*create_graph=*/false, /*allow_unused=*/true)[0]);
    }
    torch::NoGradGuard no_grad;
    if (!g.defined()) g = torch::zeros_like(leaf);
    auto e_now = e.detach();
    if (options_.grad_clip() > 0) g = detail::clip_rows(g, options_.grad_clip(), 1e-12);
    if (options_.momentum() > 0) {
      k.velocity = k.velocity.defined() ? k.velocity.mul_(options_.momentum()).add_(g) : g;
      g = k.velocity;
    }
    auto z = leaf.detach();
    if (!k.checked.defined()) k.checked = z;
    auto next = placed_.scale.defined() ? torch::addcmul(z, g, placed_.scale, -eta) : torch::add(z, g, -eta);
    if (sigma > 0) next.add_(random::randn_like(next), sigma);
    k.pending.push_back(e_now);
    // The box clamp would turn an infinite row finite: its sum is checked too.
    if (clamps()) k.pending.push_back(next.flatten(1).sum(1));
    next = clamp_to_box(next);
    if ((t + 1) % check_every() == 0 || t + 1 == options_.steps()) {
      settle(k, next);
    } else {
      leaf = std::move(next);
    }
    if constexpr (InitPolicyWithAux<Init, state_type>) {
      auto& aux = init_.aux(state);
      if (!ga.defined()) ga = torch::zeros_like(aux);
      const auto aux_frozen = k.failed.view(row_shape(aux.dim(), rows));
      const auto before = aux.detach().clone();
      // Zeroed, so a non-finite gradient of a failed row cannot reach an optimiser that mixes rows.
      init_.update_aux(state, ga.masked_fill_(aux_frozen, 0));
      // The policy's optimiser keeps moving a frozen row by its moments: put it back.
      aux.detach().copy_(torch::where(aux_frozen, before, aux.detach()));
    }
    return e_now;
  }

  /// Policies with auxiliary state check every step: their optimiser must
  /// never see a failed row's gradient.
  int64_t check_every() const {
    if constexpr (InitPolicyWithAux<Init, state_type>) return 1;
    return options_.check_every();
  }
  bool clamps() const {
    if constexpr (BoxedPrior<prior_type> || CoordinateBoxedPrior<prior_type>) return options_.clamp_to_box();
    return false;
  }

  /// The check: a row whose energies since the last check, or whose latent
  /// `next`, are not all finite fails, and goes back to where it was at the
  /// last check. Rows are independent, failure is permanent, and NaN is
  /// absorbing under the update (a non-finite gradient makes the latent
  /// non-finite), so one sum per row tests them all (up to an overflow of the
  /// sum itself), and one `where` freezes them.
  void settle(chunk& k, torch::Tensor next) {
    if (k.pending.empty()) return;
    torch::NoGradGuard no_grad;
    auto sums = next.flatten(1).sum(1);
    if (k.pending.size() <= 2) {
      for (const auto& p : k.pending) sums.add_(p);
    } else {
      sums.add_(torch::stack(k.pending).sum(0));
    }
    k.pending.clear();
    k.failed.logical_or_(sums.mul_(0).ne(0));  // x * 0 is 0 exactly when x is finite (two kernels; isfinite is four)
    auto& leaf = k.state->leaf;
    leaf = torch::where(k.failed.view(row_shape(next.dim(), next.size(0))), k.checked, next);
    k.checked = leaf;
  }

  static void check_energy(const torch::Tensor& e, int64_t rows) {
    if (e.dim() != 1 || e.size(0) != rows)
      detail::fail("energy: expected per-sample energies of shape [", rows, "], got shape ", detail::shape_of(e));
  }

  static c10::SmallVector<int64_t, 4> row_shape(int64_t dim, int64_t rows) {
    c10::SmallVector<int64_t, 4> shape(static_cast<size_t>(dim), 1);
    shape[0] = rows;
    return shape;
  }

  torch::Tensor clamp_to_box(const torch::Tensor& z) const {
    if constexpr (CoordinateBoxedPrior<prior_type>) {
      if (options_.clamp_to_box()) return torch::maximum(torch::minimum(z, placed_.hi), placed_.lo);
    } else if constexpr (BoxedPrior<prior_type>) {
      if (options_.clamp_to_box()) {
        const auto b = prior().box();
        return z.clamp(b.lo, b.hi);
      }
    }
    return z;
  }

  /// The step multipliers and per-coordinate bounds on the run's device, once per run.
  void place_step_tensors(torch::Device device) {
    const auto o = torch::TensorOptions(torch::kFloat32).device(device);
    placed_.scale = options_.step_scale().defined() ? options_.step_scale().to(o) : torch::Tensor();
    if constexpr (CoordinateBoxedPrior<prior_type>) {
      const auto b = prior().bounds();
      placed_.lo = b.lo.to(o), placed_.hi = b.hi.to(o);
    }
  }

  void check_step_scale() const {
    if (options_.step_scale().defined() && options_.step_scale().size(0) != prior().dim())
      detail::fail("sampler_options: step_scale: expected one multiplier per latent coordinate (",
                   prior().dim(), "), got ", options_.step_scale().size(0));
  }

  void check_call(const torch::Tensor& conditions, int64_t n) {
    const auto width = detail::unwrap(encoder_).condition_dim();
    detail::check_matrix(conditions, "sample: conditions", width, "the encoder's condition_dim");
    if (n <= 0) detail::fail("sample: n: expected samples per condition > 0, got ", n);
    for (int64_t t : {int64_t{0}, options_.steps() - 1}) {
      if (t < 0) continue;
      const double eta = schedule_.step_size(t, options_.steps());
      if (!(eta > 0) || !std::isfinite(eta))
        detail::fail("sample: step size: expected a finite eta > 0 at every step, got eta = ", eta,
                     " at step ", t, " of ", options_.steps());
      const double sigma = noise_.sigma(eta);
      if (!(sigma >= 0) || !std::isfinite(sigma))
        detail::fail("sample: noise: expected a finite sigma >= 0, got ", sigma, " at step ", t);
    }
    if constexpr (std::is_base_of_v<torch::nn::Module, detail::unwrapped_t<T>>) {
      const auto params = detail::unwrap(translator_).parameters();
      if (!params.empty())
        detail::check_same_device(conditions, "sample: conditions", params.front(), "the translator");
    }
    // The value checks read the conditions on the host: once per tensor and version.
    if (checked_conditions_.same(conditions)) return;
    detail::check_finite(conditions, "sample: conditions");
    detail::check_energy_conditions(energy_, conditions, "sample: conditions");
    checked_conditions_.remember(conditions);
  }

  [[no_unique_address]] G generator_;
  [[no_unique_address]] F encoder_;
  [[no_unique_address]] E energy_;
  [[no_unique_address]] T translator_;
  sampler_options options_;
  [[no_unique_address]] Init init_;
  [[no_unique_address]] S schedule_;
  [[no_unique_address]] N noise_;
  int64_t energy_evals_ = 0;
  detail::seen_tensor checked_conditions_;
  detail::step_tensors placed_;  ///< on the run's device (`place_step_tensors`)
};

}  // namespace tr0n
