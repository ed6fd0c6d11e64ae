#pragma once
/// \file
/// Random streams of tr0n's runs. A seeded `sample` or `train_translator` call
/// draws from its own `at::Generator`, never from LibTorch's global one, so it
/// neither resets the caller's random stream nor interleaves its draws with a
/// run in another thread.
///
/// The run installs its generator for the current thread with a
/// `generator_scope`; everything tr0n draws inside the run (prior samples,
/// translator samples, Langevin noise, augmentations) goes through the
/// functions below, which use that generator, or LibTorch's default one
/// outside any scope. A user prior or energy that wants to join the run's
/// stream draws through them too; one that calls `torch::randn` directly
/// still works, but draws from the global stream.
///
/// Per-chain streams. A run of many chains (the sampler with `max_batch`)
/// gives each fixed-size block of chains a generator of its own, and installs
/// a chunk's blocks with a `chain_streams_scope`. Inside it, a draw whose
/// first dimension is `k` times the chunk's chains (chain-major, as
/// `repeat_interleave` lays out `k` copies per chain) fills each block's rows
/// from that block's generator; so a chain's draws do not depend on how the
/// chains are cut into chunks. Other draws, and the host engine, use the
/// chunk's first block.
///
/// A chunk smaller than a block (a model so large that a block of chains does
/// not fit in memory) has a generator of its own, seeded as its block's: each
/// such draw fills the whole block's shape from it and keeps the chunk's rows,
/// so the chunk's chains draw exactly what they draw in a whole block (bit for
/// bit: the same generator fills the same shape). It costs the block's random
/// numbers per chunk, which is small beside a model that needs such chunks.
///
/// ```
/// tr0n::generator_scope scope(/*seed=*/42, torch::kCPU);
/// auto z = tr0n::random::randn({4, 8}, torch::kFloat32);  // from gen
/// ```
#include <tr0n/detail/blocks.hpp>
#include <tr0n/detail/compat.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <ATen/Context.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

namespace tr0n {

namespace detail {
/// A run's streams: the tensor generator, and a host engine for the few draws
/// that shape a computation (a resize ratio) and so must be known on the host.
struct run_streams {
  at::Generator tensors;
  std::mt19937_64* host = nullptr;  ///< the run's host engine (owned by its scope)
  /// Per-chain blocks (none outside a `chain_streams_scope`): `blocks[b]`
  /// draws rows `[b * block_rows, (b + 1) * block_rows)` of the `rows` chains.
  const at::Generator* blocks = nullptr;
  int64_t block_count = 0;
  int64_t block_rows = 0;
  int64_t rows = 0;
  /// A chunk smaller than its block: its `rows` chains are rows
  /// `[offset, offset + rows)` of one block of `block_size` chains, and
  /// `blocks[0]` is a generator of its own in that block's initial state.
  int64_t offset = 0;
  int64_t block_size = 0;
  bool partial() const noexcept { return blocks != nullptr && block_size > rows && rows > 0; }
};
inline run_streams& thread_streams() {
  thread_local run_streams current;
  return current;
}
/// The current run's host engine; outside any run, one per thread.
inline std::mt19937_64& host_engine() {
  thread_local std::mt19937_64 outside{0x7230};
  auto* h = thread_streams().host;
  return h ? *h : outside;
}
}  // namespace detail

/// A fresh generator for `device`, seeded with `seed`. On other devices than
/// the CPU, built by cloning the device's default generator (so it works for
/// any device type LibTorch was built with, without device headers) and
/// reseeding the clone.
inline at::Generator make_generator(uint64_t seed, torch::Device device = torch::kCPU) {
  // On CPU, made directly: LibTorch 1.13's Generator::clone leaks its clone
  // (2.6 KB a run, found by LeakSanitizer in the checkpoint fuzzer).
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  at::Generator global = at::globalContext().defaultGenerator(device);
  at::Generator gen;
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    gen = global.clone();
  }
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

/// The seed of block `b` of a run seeded with `seed` (block 0: `seed` itself,
/// so a run of one block draws what an unblocked run draws).
inline uint64_t block_seed(uint64_t seed, uint64_t b) {
  if (b == 0) return seed;
  uint64_t x = seed + b * 0x9e3779b97f4a7c15ULL;  // splitmix64
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A seed for an unseeded run, drawn from the global stream (so
/// `torch::manual_seed` still makes such runs reproducible).
inline uint64_t draw_seed() {
  return static_cast<uint64_t>(
      torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
}

/// Makes `gen` the stream of tr0n's draws on this thread until destroyed;
/// scopes nest, and the previous stream comes back at the end.
class generator_scope {
 public:
  /// `gen` for tensors; the host engine is seeded with `host_seed`.
  generator_scope(at::Generator gen, uint64_t host_seed)
      : host_(host_seed), previous_(std::exchange(detail::thread_streams(), detail::run_streams{std::move(gen), &host_})) {}
  /// The run's streams for `device`: seeded with `seed`, or with `draw_seed()`.
  generator_scope(std::optional<uint64_t> seed, torch::Device device) : generator_scope(seeded(seed), device) {}
  generator_scope(const generator_scope&) = delete;
  generator_scope& operator=(const generator_scope&) = delete;
  ~generator_scope() { detail::thread_streams() = std::move(previous_); }

 private:
  generator_scope(uint64_t seed, torch::Device device) : generator_scope(make_generator(seed, device), seed) {}
  static uint64_t seeded(std::optional<uint64_t> seed) { return seed ? *seed : draw_seed(); }

  std::mt19937_64 host_;
  detail::run_streams previous_;
};

/// One chunk of a run's per-chain streams: `blocks` (generators of
/// consecutive blocks of `block_rows` chains, the last one possibly shorter)
/// cover the chunk's `rows` chains. The chunk's host engine is `host`, which
/// must outlive the scope. See the file comment.
class chain_streams_scope {
 public:
  /// `offset`, `block_size`: for a chunk smaller than its block, where its rows lie in
  /// the block and the block's chains; `blocks` is then its own copy of the block's generator.
  chain_streams_scope(const at::Generator* blocks, int64_t block_count, int64_t block_rows, int64_t rows,
                      std::mt19937_64& host, int64_t offset = 0, int64_t block_size = 0)
      : previous_(std::exchange(detail::thread_streams(), detail::run_streams{blocks[0], &host, blocks, block_count,
                                                                                block_rows, rows, offset, block_size})) {}
  chain_streams_scope(const chain_streams_scope&) = delete;
  chain_streams_scope& operator=(const chain_streams_scope&) = delete;
  ~chain_streams_scope() { detail::thread_streams() = std::move(previous_); }

 private:
  detail::run_streams previous_;
};

namespace detail {
/// Fills `out` from the current streams with `fill(slice, generator)`: block
/// by block when its first dimension is a multiple of the chunk's chains.
template <class Fill>
torch::Tensor fill_draw(torch::Tensor out, Fill&& fill) {
  const auto& s = thread_streams();
  const int64_t n = out.dim() > 0 ? out.size(0) : 0;
  if (s.partial() && n > 0 && n % s.rows == 0) {  // the whole block's draw, the chunk's rows of it
    const int64_t k = n / s.rows;
    auto shape = out.sizes().vec();
    shape[0] = k * s.block_size;
    auto whole = torch::empty(shape, out.options());
    fill(whole, detail::generator_arg(s.blocks[0]));
    out.copy_(whole.narrow(0, s.offset * k, n));
    return out;
  }
  if (s.blocks == nullptr || s.block_count == 1 || s.rows == 0 || n == 0 || n % s.rows != 0) {
    fill(out, s.tensors.defined() ? detail::generator_arg(s.tensors) : detail::torch_nullopt);
    return out;
  }
  const int64_t k = n / s.rows;
  for (const auto span : block_spans(s.rows, s.block_rows, s.block_count)) {
    auto slice = out.narrow(0, span.first * k, span.count * k);
    fill(slice, detail::generator_arg(s.blocks[span.index]));
  }
  return out;
}
}  // namespace detail

/// The draws of tr0n's runs: LibTorch's functions of the same names, on the
/// current scope's generator (the global one outside a scope).
namespace random {

inline detail::generator_arg current() {
  const auto& g = detail::thread_streams().tensors;
  if (!g.defined()) return detail::torch_nullopt;
  return g;
}

// Each as LibTorch builds it (an empty tensor filled in place), so a draw of
// one block equals LibTorch's draw of the same shape from the same generator.
inline torch::Tensor randn(torch::IntArrayRef size, torch::TensorOptions options = {}) {
  return detail::fill_draw(torch::empty(size, options),
                           [](torch::Tensor& t, detail::generator_arg g) { t.normal_(0, 1, g); });
}
inline torch::Tensor rand(torch::IntArrayRef size, torch::TensorOptions options = {}) {
  return detail::fill_draw(torch::empty(size, options),
                           [](torch::Tensor& t, detail::generator_arg g) { t.uniform_(0, 1, g); });
}
inline torch::Tensor randint(int64_t low, int64_t high, torch::IntArrayRef size, torch::TensorOptions options) {
  return detail::fill_draw(torch::empty(size, options),
                           [&](torch::Tensor& t, detail::generator_arg g) { t.random_(low, high, g); });
}
inline torch::Tensor randn_like(const torch::Tensor& t) {
  return randn(t.sizes(), t.options().requires_grad(false));
}
/// `n` draws per row of `probs` `[R, K]`, `[R, n]`.
inline torch::Tensor multinomial(const torch::Tensor& probs, int64_t n, bool replacement) {
  auto out = torch::empty({probs.size(0), n}, probs.options().dtype(torch::kLong));
  const auto& s = detail::thread_streams();
  if (s.partial() && probs.size(0) == s.rows) {
    // The whole block's draw (a row's draw does not depend on the other rows' probabilities).
    auto whole = torch::ones({s.block_size, probs.size(1)}, probs.options());
    whole.narrow(0, s.offset, s.rows).copy_(probs);
    auto drawn = torch::multinomial(whole, n, replacement, s.blocks[0]);
    return out.copy_(drawn.narrow(0, s.offset, s.rows));
  }
  if (s.blocks == nullptr || s.block_count == 1 || probs.size(0) != s.rows)
    return torch::multinomial_out(out, probs, n, replacement, current());
  for (const auto span : detail::block_spans(s.rows, s.block_rows, s.block_count)) {
    auto slice = out.narrow(0, span.first, span.count);
    torch::multinomial_out(slice, probs.narrow(0, span.first, span.count), n, replacement, s.blocks[span.index]);
  }
  return out;
}
inline torch::Tensor randperm(int64_t n, torch::TensorOptions options) { return torch::randperm(n, current(), options); }
/// One uniform number in [lo, hi) from the run's host engine (no device sync).
inline double host_uniform(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(detail::host_engine());
}

}  // namespace random
}  // namespace tr0n
