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
/// ```
/// tr0n::generator_scope scope(/*seed=*/42, torch::kCPU);
/// auto z = tr0n::random::randn({4, 8}, torch::kFloat32);  // from gen
/// ```
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <ATen/Context.h>
#include <torch/types.h>

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
  std::mt19937_64 host{0x7230};
};
inline run_streams& thread_streams() {
  thread_local run_streams current;
  return current;
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
      : previous_(std::exchange(detail::thread_streams(), detail::run_streams{std::move(gen), std::mt19937_64(host_seed)})) {}
  /// The run's streams for `device`: seeded with `seed`, or with `draw_seed()`.
  generator_scope(std::optional<uint64_t> seed, torch::Device device) : generator_scope(seeded(seed), device) {}
  generator_scope(const generator_scope&) = delete;
  generator_scope& operator=(const generator_scope&) = delete;
  ~generator_scope() { detail::thread_streams() = std::move(previous_); }

 private:
  generator_scope(uint64_t seed, torch::Device device) : generator_scope(make_generator(seed, device), seed) {}
  static uint64_t seeded(std::optional<uint64_t> seed) { return seed ? *seed : draw_seed(); }

  detail::run_streams previous_;
};

/// The draws of tr0n's runs: LibTorch's functions of the same names, on the
/// current scope's generator (the global one outside a scope).
namespace random {

inline c10::optional<at::Generator> current() {
  const auto& g = detail::thread_streams().tensors;
  if (!g.defined()) return c10::nullopt;
  return g;
}

inline torch::Tensor randn(torch::IntArrayRef size, torch::TensorOptions options = {}) {
  return torch::randn(size, current(), options);
}
inline torch::Tensor rand(torch::IntArrayRef size, torch::TensorOptions options = {}) {
  return torch::rand(size, current(), options);
}
inline torch::Tensor randint(int64_t low, int64_t high, torch::IntArrayRef size, torch::TensorOptions options) {
  return torch::randint(low, high, size, current(), options);
}
inline torch::Tensor randn_like(const torch::Tensor& t) {
  return randn(t.sizes(), t.options().requires_grad(false));
}
inline torch::Tensor multinomial(const torch::Tensor& probs, int64_t n, bool replacement) {
  return torch::multinomial(probs, n, replacement, current());
}
inline torch::Tensor randperm(int64_t n, torch::TensorOptions options) { return torch::randperm(n, current(), options); }
/// One uniform number in [lo, hi) from the run's host engine (no device sync).
inline double host_uniform(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(detail::thread_streams().host);
}

}  // namespace random
}  // namespace tr0n
