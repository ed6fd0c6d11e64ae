#pragma once
/// \file
/// A memory budget that holds for any model: how many chains a batch of the
/// sampler can hold, measured, not guessed.
///
/// `measure_chain_memory(sampler, conditions, budget)` runs what a step of
/// the sampler runs, the energy's forward and backward through G and f at the
/// sampler's precision, for a probe chunk of one chain and of two chains, and
/// counts the peak bytes of CPU tensors allocated meanwhile (a counting
/// allocator wraps LibTorch's CPU allocator for the probe's duration). The
/// difference is what one more chain takes (`per_chain`); the rest is what a
/// batch takes whatever its size (`fixed`: workspaces; a precision's lowered
/// weight copy is made before the probe and so is not in it). The probe
/// keeps to the budget too: when two chains would not fit it (twice one
/// chain's peak), it runs one chain only, and counts all of it as the chain's.
/// `chains_within(budget)` is then `(budget - fixed) / per_chain`, at least 1:
/// the `max_batch` for `sampler_options`, which runs chunks of that many
/// chains, down to one (results do not depend on it).
///
/// What it does not count: memory that kernels take outside LibTorch's
/// allocator (oneDNN's scratch pads, BLAS buffers), the model weights (loaded
/// before), and the run's output. On a device other than the CPU it measures
/// nothing and returns none: size `max_batch` by another rule there.
/// The probe draws from a generator of its own (seed 0), not the caller's.
///
/// ```
/// const int64_t budget = int64_t{512} << 20;
/// if (auto m = tr0n::measure_chain_memory(s, conditions, budget))
///   s.set_options(tr0n::sampler_options(s.options()).max_batch(m->chains_within(budget)));
/// ```
#include <tr0n/random.hpp>
#include <tr0n/runtime/allocator.hpp>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/autograd.h>
#include <torch/types.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tr0n {

/// Bytes a batch of chains takes: `fixed + chains * per_chain`.
struct chain_memory {
  int64_t per_chain = 0;
  int64_t fixed = 0;

  /// The most chains whose batch fits `budget_bytes` (at least 1).
  int64_t chains_within(int64_t budget_bytes) const {
    return std::max<int64_t>(1, (budget_bytes - fixed) / std::max<int64_t>(1, per_chain));
  }
};

namespace detail {

/// Current and peak bytes of the counting allocator's live blocks.
struct allocation_counter {
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> peak{0};

  void add(int64_t n) {
    const int64_t now = live.fetch_add(n) + n;
    int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  void reset_peak() { peak.store(live.load()); }
};

/// The counting part, behind `core_allocator` (allocator.hpp). A block's
/// context is its data pointer, as LibTorch's own CPU allocator makes them (code
/// that calls `raw_allocate` asserts it); the inner allocator's block and its
/// size are kept in a table until it is freed.
struct counting_core {
  c10::Allocator* inner = nullptr;
  allocation_counter counter;
  std::mutex mutex;
  std::unordered_map<void*, std::pair<c10::DataPtr, int64_t>> blocks;

  static counting_core& instance() {
    static auto* c = new counting_core();  // never destroyed: blocks may be freed at exit
    return *c;
  }

  static void free_block(void* ptr) {
    auto& c = instance();
    c10::DataPtr inner;  // freed outside the lock
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      const auto it = c.blocks.find(ptr);
      if (it == c.blocks.end()) return;
      c.counter.live.fetch_sub(it->second.second);
      inner = std::move(it->second.first);
      c.blocks.erase(it);
    }
  }

  c10::DataPtr allocate(std::size_t n) {
    auto data = inner->allocate(n);
    void* ptr = data.get();
    if (ptr == nullptr) return data;
    const auto device = data.device();
    {
      std::lock_guard<std::mutex> lock(mutex);
      blocks.emplace(ptr, std::make_pair(std::move(data), static_cast<int64_t>(n)));
    }
    counter.add(static_cast<int64_t>(n));
    return {ptr, ptr, &counting_core::free_block, device};
  }
};

/// Installs the counting allocator as LibTorch's CPU allocator until destroyed.
/// Blocks it handed out may outlive the scope: the allocator and its counter
/// live for the whole program. Not for concurrent use with other threads that
/// install allocators. `counting()` is false when LibTorch kept another
/// allocator (one installed with a higher priority).
class counting_scope {
 public:
  counting_scope() : previous_(c10::GetCPUAllocator()) {
    counting_core::instance().inner = previous_;
    c10::SetCPUAllocator(&allocator(), /*priority=*/0);
    counting_ = c10::GetCPUAllocator() == &allocator();
  }
  counting_scope(const counting_scope&) = delete;
  counting_scope& operator=(const counting_scope&) = delete;
  ~counting_scope() {
    if (counting_) c10::SetCPUAllocator(previous_, /*priority=*/0);
  }

  bool counting() const noexcept { return counting_; }
  static allocation_counter& counter() { return counting_core::instance().counter; }

 private:
  static c10::Allocator& allocator() {
    static auto* a = new core_allocator<counting_core>();
    return *a;
  }

  c10::Allocator* previous_;
  bool counting_ = false;
};

/// Forward and backward of `s`'s energy for `k` chains from the prior.
template <class Sampler>
void energy_step(Sampler& s, const torch::Tensor& conditions, int64_t k) {
  torch::AutoGradMode grad_mode(true);
  auto z = s.prior().sample(k, conditions.options().dtype(torch::kFloat32)).requires_grad_(true);
  auto e = s.evaluate(z, conditions.narrow(0, 0, 1).repeat_interleave(k, 0));  // as `sample` repeats them
  torch::autograd::grad({e.sum()}, {z});
}

}  // namespace detail

/// What a batch of `sampler`'s chains takes in memory, measured on its
/// conditions' first row, in probes that keep to `budget_bytes` where one
/// chain does (see the file comment); none off the CPU, or when the allocator
/// cannot be counted.
template <class Sampler>
std::optional<chain_memory> measure_chain_memory(Sampler& sampler, const torch::Tensor& conditions,
                                                 int64_t budget_bytes) {
  if constexpr (requires { sampler.check(conditions, int64_t{1}); })
    sampler.check(conditions, 1);  // conditions `sample` refuses are refused here, in its words
  if (!conditions.device().is_cpu()) return std::nullopt;
  generator_scope streams(make_generator(0, conditions.device()), 0);
  detail::energy_step(sampler, conditions, 1);  // makes what is made once (a precision's weight copy)
  release_free_memory();                         // and the probe starts from what is live
  detail::counting_scope scope;
  if (!scope.counting()) return std::nullopt;
  auto& counter = detail::counting_scope::counter();
  auto peak_of = [&](int64_t k) {
    const int64_t before = counter.live.load();
    counter.reset_peak();
    detail::energy_step(sampler, conditions, k);
    return counter.peak.load() - before;
  };
  const int64_t one = std::max<int64_t>(1, peak_of(1));
  if (2 * one > budget_bytes) return chain_memory{one, 0};
  const int64_t per_chain = std::max<int64_t>(1, peak_of(2) - one);
  return chain_memory{per_chain, std::max<int64_t>(0, one - per_chain)};
}

}  // namespace tr0n
