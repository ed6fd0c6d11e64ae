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
/// **Checkpoints and resuming.** A checkpoint holds the shared state once and
/// every rank's random streams (gathered to rank 0, which writes it); it is
/// resumed by as many processes (others are refused by name). Rank 0's
/// options decide whether to resume and checkpoint, and how often; only rank
/// 0 reads and writes the files (it sends the checkpoint's bytes), so the
/// other ranks may leave the paths empty and need no shared file system. On
/// CPU a resumed run ends bitwise where the uninterrupted one does.
///
/// **Stopping.** A callback that stops the run on any rank stops every rank
/// after the next step, at the same step (the request travels in that step's
/// all-reduce), and the checkpoint, if any, is written there.
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
#include <string>
#include <utility>
#include <vector>

namespace tr0n::distributed {

namespace detail {
/// `train_translator`'s reducer over a process group.
class group_reducer {
 public:
  explicit group_reducer(process_group& group) : group_(group) {}

  /// Rank 0's: whether to resume, whether to write checkpoints and how often.
  tr0n::detail::checkpoint_plan agree_plan(tr0n::detail::checkpoint_plan mine) {
    auto t = torch::tensor({int64_t{mine.resume}, int64_t{mine.write}, mine.every}, torch::kLong);
    group_.broadcast(t, 0);
    return {t[0].item<int64_t>() != 0, t[1].item<int64_t>() != 0, t[2].item<int64_t>()};
  }

  void start(std::vector<torch::Tensor>& params) {
    torch::NoGradGuard no_grad;
    auto flat = flatten(params, [](const torch::Tensor& p) { return p; });
    group_.broadcast(flat, 0);
    unflatten(flat, params, [](torch::Tensor& p, const torch::Tensor& v) { p.copy_(v); });
  }

  /// Rank 0's seed, everywhere.
  uint64_t agree_seed(uint64_t seed) { return group_.broadcast(seed, 0); }

  /// Each rank's own stream: the run's seed and the rank.
  uint64_t stream_seed(uint64_t seed) const { return block_seed(seed, static_cast<uint64_t>(group_.rank())); }

  int64_t rank() const { return group_.rank(); }
  int64_t world_size() const { return group_.world_size(); }

  /// Rank 0 reads the file and sends its bytes; a failure to read it fails every rank.
  std::string read_checkpoint(const std::string& path) {
    std::string bytes, error;
    if (group_.is_root()) {
      try {
        bytes = tr0n::detail::no_reducer::read_file(path);
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    // [size, failed], then the bytes (or the error).
    auto head = torch::zeros({2}, torch::kLong);
    if (group_.is_root()) {
      head[0] = static_cast<int64_t>(error.empty() ? bytes.size() : error.size());
      head[1] = error.empty() ? 0 : 1;
    }
    group_.broadcast(head, 0);
    auto body = group_.is_root() ? tr0n::detail::bytes_tensor(error.empty() ? bytes : error)
                                 : torch::empty({head[0].item<int64_t>()}, torch::kUInt8);
    if (body.numel() > 0) group_.broadcast(body, 0);
    if (head[1].item<int64_t>() != 0) {
      if (group_.is_root()) throw std::invalid_argument(error);
      auto why = tr0n::detail::tensor_bytes(body);
      if (why.rfind("tr0n: ", 0) == 0) why = why.substr(6);
      tr0n::detail::fail("distributed::train_translator: rank 0 cannot read the checkpoint: ", why);
    }
    return group_.is_root() ? std::move(bytes) : tr0n::detail::tensor_bytes(body);
  }

  /// Every rank's streams, on rank 0 (elsewhere: an empty list).
  std::vector<tr0n::detail::stream_state> gather_streams(tr0n::detail::stream_state mine) {
    auto rng = group_.gather(mine.rng.to(torch::kCPU, torch::kUInt8).contiguous());
    auto host = group_.gather(tr0n::detail::bytes_tensor(mine.host_rng));
    // The order (or nothing) and the cursor, as one int64 row each: [cursor, order...].
    auto place = mine.order.defined()
                     ? torch::cat({torch::full({1}, mine.cursor, torch::kLong), mine.order.to(torch::kCPU, torch::kLong)})
                     : torch::empty({0}, torch::kLong);
    auto places = group_.gather(place);
    std::vector<tr0n::detail::stream_state> all;
    for (size_t r = 0; r < rng.size(); ++r) {
      tr0n::detail::stream_state s;
      s.rng = rng[r].clone();
      s.host_rng = tr0n::detail::tensor_bytes(host[r]);
      if (places[r].numel() > 0) {
        s.cursor = places[r][0].item<int64_t>();
        s.order = places[r].narrow(0, 1, places[r].numel() - 1).clone();
      }
      all.push_back(std::move(s));
    }
    return all;
  }

  /// The request of any rank's callbacks, a step late and the same everywhere.
  bool stop(bool asked) {
    const bool agreed = stop_agreed_;
    stop_asked_ = stop_asked_ || asked;
    return agreed;
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
                            loss.reshape({1}).to(params.front().scalar_type()),
                            torch::full({1}, stop_asked_ ? 1.0 : 0.0, params.front().options())});
    group_.all_reduce_sum(flat);
    // The stop requests (the last entry, a count of ranks) ride along: one all-reduce a step.
    const auto asked = flat.size(0) - 1;
    stop_agreed_ = flat[asked].item<double>() > 0;
    flat = flat.narrow(0, 0, asked);
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
  bool stop_asked_ = false, stop_agreed_ = false;
};
static_assert(tr0n::Reducer<group_reducer>);
}  // namespace detail

/// `tr0n::train_translator`, data-parallel over `group` (see the file comment).
/// `options.batch_size()` is each process's batch; `options.seed()` is read on
/// rank 0 (drawn there when unset) and used everywhere.
template <TrainableTranslator T, Generator G, Encoder F, Callback... Cbs>
training_report train_translator(process_group& group, T& translator, G& generator, F& encoder,
                                 translator_training_options options, Cbs&&... callbacks) {
  if (group.alone()) return tr0n::train_translator(translator, generator, encoder, options, callbacks...);
  detail::group_reducer reducer(group);
  return tr0n::detail::train_translator_impl(translator, generator, encoder, options, reducer, callbacks...);
}

}  // namespace tr0n::distributed
