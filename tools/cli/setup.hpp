#pragma once
// What a run starts with: the device, the thread policy and the precision
// from the common flags, the torchrun group, and the start-up line.
#include "flags.hpp"

#include <tr0n/runtime/precision.hpp>
#include <tr0n/runtime/threads.hpp>
#ifdef TR0N_WITH_DISTRIBUTED
#include <tr0n/distributed/process_group.hpp>
#endif

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace tr0n_cli {

/// Applies the thread policy; `announce` prints the configuration in use once
/// the inputs are read (so a bad input costs one line of output, not two).
struct run_setup {
  torch::Device device;
  tr0n::thread_config threads;
  tr0n::precision precision = tr0n::precision::fp32;

  /// `--threads 0` means every core, shared among the processes torchrun
  /// started on this machine (LOCAL_WORLD_SIZE), so they never oversubscribe it.
  /// bfloat16 products run on LibTorch's pool (oneDNN), not OpenBLAS's: the
  /// threads go there.
  /// `--precision auto` is bf16 where `auto_bf16` (sample) on a CPU that has
  /// AVX512_BF16, else fp32. serve stays fp32: with TorchScript models,
  /// LibTorch's profiling executor computes the first gradient under autocast
  /// apart from later ones (by up to 4e-3, measured), so the same request
  /// would not give the same images twice.
  static run_setup start(const common_flags& f, bool auto_bf16 = false) {
    int threads = f.threads;
    if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); threads == 0 && local && std::atoi(local) > 1)
      threads = std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / std::atoi(local));
    const auto device = parse_device(f.device);
    const auto precision = f.precision != "auto" ? tr0n::parse_precision(f.precision)
                           : auto_bf16 && device.is_cpu() && tr0n::cpu_has_bf16() ? tr0n::precision::bf16
                                                                                   : tr0n::precision::fp32;
    try {
      tr0n::check_precision(precision, device);
    } catch (const std::exception&) {
      tr0n::fail("--precision ", f.precision, ": needs --device cuda (on the CPU, LibTorch's autocast runs bf16 "
                         "only)");
    }
    return {device, tr0n::configure_threads(threads, tr0n::workload_for(precision, device)), precision};
  }

  /// `--device`, checked against this LibTorch build and machine.
  static torch::Device parse_device(const std::string& s) {
    std::optional<torch::Device> d;
    try {
      d.emplace(s);
    } catch (const std::exception&) {
      tr0n::fail("--device ", s, ": not a device (cpu, cuda, cuda:1, ...)");
    }
    if (d->is_cuda()) {
      if (!torch::cuda::is_available())
        tr0n::fail("--device ", s, ": this LibTorch build has no CUDA support, or no GPU is visible");
      if (d->has_index() && d->index() >= static_cast<int>(torch::cuda::device_count()))
        tr0n::fail("--device ", s, ": there are only ", torch::cuda::device_count(), " CUDA devices");
    } else if (!d->is_cpu()) {
      tr0n::fail("--device ", s, ": only cpu and cuda devices are supported");
    }
    return *d;
  }

#ifdef TR0N_WITH_DISTRIBUTED
  /// The processes started with this one (torchrun's variables), or one alone.
  /// With `share_seed`, a run without `--seed` takes one rank 0 draws (sharded
  /// sampling needs the same seed everywhere; training agrees on its own).
  static tr0n::distributed::process_group join(common_flags& f, torch::Device device, bool share_seed) {
    auto env = tr0n::distributed::environment::from_env();
    if (env.launched && env.world_size > 1) {
      if (f.dist_backend == "nccl")
        tr0n::fail("--dist-backend nccl: this tr0n was built with Gloo only (LibTorch without NCCL); "
                           "use gloo with --device cpu");
      if (!device.is_cpu())
        tr0n::fail("--dist-backend gloo: runs on CPU tensors; use --device cpu (or nccl for CUDA)");
    }
    tr0n::distributed::group_options options;
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.dist_timeout * 1000));
    tr0n::distributed::process_group group(env, options);
    if (share_seed && !group.alone() && !f.seed) f.seed = group.broadcast(tr0n::draw_seed());  // rank 0's, everywhere
    return group;
  }
#endif

  void announce(const char* command, const common_flags& f, const std::string& details) const {
    std::fprintf(stderr, "tr0n %s: device %s, %s%s, %s, seed %s%s%s\n", command, device.str().c_str(),
                 tr0n::to_string(precision), f.precision == "auto" ? " (auto)" : "", threads.describe().c_str(),
                 f.seed ? std::to_string(*f.seed).c_str() : "none", details.empty() ? "" : ", ", details.c_str());
  }
};

}  // namespace tr0n_cli
