#pragma once
/// \file
/// One thread policy for programs built on tr0n (the `tr0n` tool and the
/// examples use it). The library itself never changes thread settings: a
/// program calls `configure_threads` once, at start-up.
///
/// Two pools can run the same work: LibTorch's intra-op pool and, when LibTorch
/// calls an OpenBLAS with its own threads (Debian's LibTorch does), OpenBLAS's
/// pool. Both default to every core, and together they fight: measured on a
/// 2-core machine at 256 chains, one Langevin step took 3.7-4.1 ms with
/// LibTorch 1 + OpenBLAS 2 threads, 6.5-7.2 ms with 2 + 1, and 18 ms with 2 + 2.
/// The policy gives `n` threads to the pool that does the work and 1 to the
/// other, so the two never oversubscribe the cores:
///  - `thread_workload::matrix_products` (the default: MLP generators,
///    encoders and translators, the Langevin step): with an OpenBLAS of its
///    own, OpenBLAS gets `n` and LibTorch 1; otherwise (MKL or OpenBLAS on
///    LibTorch's OpenMP pool, as in pip wheels) LibTorch gets `n`.
///  - `thread_workload::convolutions` (CNNs, which LibTorch runs through
///    oneDNN or its own loops, not BLAS): LibTorch gets `n`, OpenBLAS 1.
///    Measured here on 1,000 28x28 images through a two-layer CNN: 2.0 s with
///    LibTorch 1 + OpenBLAS 2 threads, 1.1 s with 2 + 1.
///  - Models in bfloat16 on a CPU (`tr0n/runtime/precision.hpp`) run their
///    products in oneDNN too: `workload_for(precision, device)` says which.
///
/// ```
/// auto config = tr0n::configure_threads(0);  // 0: every core
/// std::fprintf(stderr, "%s\n", config.describe().c_str());
/// {
///   tr0n::thread_scope cnn(0, tr0n::thread_workload::convolutions);
///   ... evaluate a CNN ...
/// }  // back to the matrix-product setting
/// ```
#include <tr0n/runtime/precision.hpp>

#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <thread>

namespace tr0n {

struct thread_config {
  int threads = 1;         ///< threads asked for
  int torch_threads = 1;   ///< LibTorch's intra-op pool
  int blas_threads = 0;    ///< OpenBLAS's own pool (0: none found)
  std::string blas;        ///< OpenBLAS's configuration string, when found

  std::string describe() const {
    std::ostringstream os;
    os << "threads: " << threads << " (LibTorch intra-op " << torch_threads << ", ";
    if (blas_threads > 0)
      os << "OpenBLAS " << blas_threads << ")";
    else
      os << "no separate OpenBLAS pool)";
    return os.str();
  }
};

namespace detail {
struct openblas_api {
  void (*set_num_threads)(int) = nullptr;
  int (*get_num_threads)() = nullptr;
  char* (*get_config)() = nullptr;

  static openblas_api find() {
    openblas_api api;
    api.set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    api.get_num_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    api.get_config = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    return api;
  }
  /// An OpenBLAS with a pool of its own (not one built on OpenMP, which shares LibTorch's).
  bool has_own_pool() const {
    if (!set_num_threads || !get_num_threads) return false;
    const std::string config = get_config ? get_config() : "";
    return config.find("OpenMP") == std::string::npos;
  }
};
}  // namespace detail

enum class thread_workload { matrix_products, convolutions };

/// The workload of models computing in `p` on `device`: on a CPU, anything
/// below float32 runs its products in oneDNN on LibTorch's pool.
inline thread_workload workload_for(precision p, const torch::Device& device = torch::kCPU) {
  return p != precision::fp32 && device.is_cpu() ? thread_workload::convolutions : thread_workload::matrix_products;
}

/// Applies the policy above with `threads` threads (0: every core), and says what it set.
inline thread_config configure_threads(int threads = 0,
                                       thread_workload workload = thread_workload::matrix_products) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  thread_config config;
  config.threads = threads > 0 ? threads : cores;
  const auto blas = detail::openblas_api::find();
  if (blas.has_own_pool()) {
    const bool blas_works = workload == thread_workload::matrix_products;
    blas.set_num_threads(blas_works ? config.threads : 1);
    config.blas_threads = blas.get_num_threads();
    if (blas.get_config) config.blas = blas.get_config();
    at::set_num_threads(blas_works ? 1 : config.threads);
  } else {
    at::set_num_threads(config.threads);
  }
  config.torch_threads = at::get_num_threads();
  return config;
}

/// The policy for one workload until the end of the scope, then the
/// settings that were in force before.
class thread_scope {
 public:
  thread_scope(int threads, thread_workload workload)
      : torch_before_(at::get_num_threads()), blas_(detail::openblas_api::find()) {
    if (blas_.get_num_threads) blas_before_ = blas_.get_num_threads();
    configure_threads(threads, workload);
  }
  thread_scope(const thread_scope&) = delete;
  thread_scope& operator=(const thread_scope&) = delete;
  ~thread_scope() {
    at::set_num_threads(torch_before_);
    if (blas_.set_num_threads && blas_before_ > 0) blas_.set_num_threads(blas_before_);
  }

 private:
  int torch_before_;
  detail::openblas_api blas_;
  int blas_before_ = 0;
};

}  // namespace tr0n
