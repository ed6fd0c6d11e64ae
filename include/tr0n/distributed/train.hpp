#pragma once
/// \file
/// Data-parallel translator training over a `process_group`. Every process
/// draws its own pairs from its own stream (the run's seed and its rank), the
/// translator starts identical everywhere (rank 0's parameters, broadcast),
/// and each step averages the gradients and the loss with one all-reduce, so
/// `W` processes at batch `b` train what one process would at batch `W b`.
/// The losses reported are the global means; only rank 0 writes checkpoints
/// (the caller writes the translator on rank 0 too: `group.is_root()`).
/// Alone, it is `tr0n::train_translator`.
///
/// ```
/// auto group = tr0n::distributed::process_group::from_environment();
/// auto report = tr0n::distributed::train_translator(group, q, generator, classifier,
///                                                   tr0n::translator_training_options().seed(0));
/// if (group.is_root()) torch::save(q, "q.pt");
/// ```
#include <tr0n/distributed/process_group.hpp>
#include <tr0n/random.hpp>
#include <tr0n/training/train_translator.hpp>

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace tr0n::distributed {

namespace detail {
/// `train_translator`'s reducer over a process group.
class group_reducer {
 public:
  explicit group_reducer(process_group& group) : group_(group) {}

  void start(std::vector<torch::Tensor>& params) {
    torch::NoGradGuard no_grad;
    auto flat = flatten(params, [](const torch::Tensor& p) { return p; });
    group_.broadcast(flat, 0);
    unflatten(flat, params, [](torch::Tensor& p, const torch::Tensor& v) { p.copy_(v); });
  }

  /// The unbiased per-dimension std of every process's latents, from their sums.
  torch::Tensor std_of(const torch::Tensor& z) {
    torch::NoGradGuard no_grad;
    const auto zd = z.to(torch::kFloat64);
    auto stats = torch::cat({zd.sum(0), zd.pow(2).sum(0), torch::full({1}, static_cast<double>(z.size(0)), zd.options())});
    group_.all_reduce_sum(stats);
    const int64_t d = z.size(1);
    const auto n = stats[2 * d];
    const auto mean = stats.narrow(0, 0, d) / n;
    const auto var = (stats.narrow(0, d, d) - n * mean.pow(2)) / (n - 1);
    return var.clamp_min(0).sqrt().to(z.dtype());
  }

  void average(std::vector<torch::Tensor>& params, torch::Tensor& loss) {
    if (group_.alone()) return;
    torch::NoGradGuard no_grad;
    auto flat = torch::cat({flatten(params, [](const torch::Tensor& p) {
                              return p.grad().defined() ? p.grad() : torch::zeros_like(p);
                            }),
                            loss.reshape({1}).to(params.front().scalar_type())});
    group_.all_reduce_sum(flat);
    flat.div_(static_cast<double>(group_.world_size()));
    unflatten(flat, params, [](torch::Tensor& p, const torch::Tensor& v) {
      if (p.grad().defined()) {
        p.mutable_grad().copy_(v);
      } else {
        p.mutable_grad() = v.clone();
      }
    });
    loss = flat[flat.size(0) - 1].to(loss.scalar_type()).reshape(loss.sizes());
  }

  bool writes() const { return group_.is_root(); }

 private:
  template <class Get>
  static torch::Tensor flatten(const std::vector<torch::Tensor>& params, Get&& get) {
    std::vector<torch::Tensor> parts;
    parts.reserve(params.size());
    for (const auto& p : params) parts.push_back(get(p).detach().reshape({-1}));
    return torch::cat(parts);
  }
  template <class Set>
  static void unflatten(const torch::Tensor& flat, std::vector<torch::Tensor>& params, Set&& set) {
    int64_t at = 0;
    for (auto& p : params) {
      set(p, flat.narrow(0, at, p.numel()).view_as(p));
      at += p.numel();
    }
  }

  process_group& group_;
};
}  // namespace detail

/// `tr0n::train_translator`, data-parallel over `group` (see the file comment).
/// `options.batch_size()` is each process's batch. Resuming across processes
/// is refused for now.
template <TrainableTranslator T, Generator G, Encoder F, Callback... Cbs>
training_report train_translator(process_group& group, T& translator, G& generator, F& encoder,
                                 translator_training_options options, Cbs&&... callbacks) {
  if (group.alone()) return tr0n::train_translator(translator, generator, encoder, options, callbacks...);
  if (!options.resume_from().empty())
    tr0n::detail::fail("distributed::train_translator: resume_from: resuming a run of ", group.world_size(),
                       " processes is not supported yet; resume it in one process");
  // One seed for the run (rank 0's, drawn if unset), then a stream per rank.
  auto seed = torch::full({1}, static_cast<int64_t>(options.seed() ? *options.seed() : draw_seed()), torch::kLong);
  group.broadcast(seed, 0);
  options.seed(block_seed(static_cast<uint64_t>(seed.item<int64_t>()), static_cast<uint64_t>(group.rank())));
  detail::group_reducer reducer(group);
  return tr0n::detail::train_translator_impl(translator, generator, encoder, options, reducer, callbacks...);
}

}  // namespace tr0n::distributed
