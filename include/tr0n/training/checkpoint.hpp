#pragma once
/// \file
/// Training checkpoints: everything `train_translator` needs to continue a run
/// as if it had never stopped. A checkpoint holds
///  - a format version (`training_checkpoint_version`);
///  - the training options, as text, and the run's seed;
///  - the steps done, the losses so far and the count of skipped steps;
///  - the translator (through its own `save`, so its options travel and are
///    checked on load, or its parameters when it has no `save`);
///  - Adam's moments and step count, per parameter;
///  - the run's random streams (tensor generator state and host engine) and,
///    for a synthetic set (`dataset_size > 0`), the epoch's order and cursor
///    (the set itself is made again from the seed, bitwise the same): one
///    such set per process of a data-parallel run, which records its number
///    of processes and is resumed only with as many.
///
/// Version 2 added the number of processes and their streams (`rank1_rng`,
/// ...); a version 1 file is a single process's and is still read.
///
/// Written with `write_file_atomically`: a crash while writing leaves the
/// previous checkpoint whole. A resumed run on CPU ends bitwise where the
/// uninterrupted one does (a test checks it).
///
/// Reading refuses, naming the file and the field: another format version,
/// training options that differ (each one named with both values), a
/// translator whose options or shapes differ, and any file that is not a
/// whole checkpoint. A checkpoint also records the LibTorch that wrote it: a
/// generator state this LibTorch cannot take (CUDA's is 816 bytes in 1.13, 16
/// in 2.x) is refused naming both versions.
#include <tr0n/io/atomic_file.hpp>
#include <tr0n/detail/archive.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/files.hpp>
#include <tr0n/detail/training_state.hpp>

#include <ATen/core/Generator.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>
#include <torch/version.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tr0n {

/// The checkpoint format this tr0n writes and reads.
inline constexpr int64_t training_checkpoint_version = 2;

namespace detail {

/// Options as `name = value` text; doubles with 17 digits, so equal text means equal values.
using option_record = std::vector<std::pair<std::string, std::string>>;

inline std::string option_text(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

inline torch::Tensor bytes_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

inline std::string tensor_bytes(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kUInt8).contiguous();
  return {reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel())};
}

inline std::string record_text(const option_record& r) {
  std::string s;
  for (const auto& [k, v] : r) s += k + "=" + v + "\n";
  return s;
}

inline std::map<std::string, std::string> parse_record(const std::string& text) {
  std::map<std::string, std::string> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}


/// What a run carries across a checkpoint, besides the translator.
struct checkpoint_state {
  uint64_t seed = 0;  ///< the run's seed (each process derives its stream from it)
  int64_t step = 0;   ///< steps done
  std::vector<torch::Tensor> m, v;
  torch::Tensor adam_t;
  torch::Tensor losses;  ///< [step] float64
  int64_t skipped = 0;
  torch::Tensor initial_log_std, late_log_std;  ///< undefined when not yet set
  double late_reach = 0;
  std::vector<stream_state> streams;  ///< one per process, in rank order
  std::string libtorch = TORCH_VERSION;  ///< the LibTorch that wrote it ("" for files before it was recorded)
};

/// The checkpoint field `name` of process `rank` (rank 0's keep version 1's names).
inline std::string stream_field(int64_t rank, const char* name) {
  return rank == 0 ? std::string(name) : "rank" + std::to_string(rank) + "_" + name;
}

/// Writes the translator: its own `save` when it has one, else its parameters.
template <class Q>
void save_translator_state(const Q& q, torch::serialize::OutputArchive& archive) {
  if constexpr (requires { q.save(archive); }) {
    q.save(archive);
  } else {
    auto params = const_cast<Q&>(q).parameters();
    for (size_t i = 0; i < params.size(); ++i) archive.write("p" + std::to_string(i), params[i].detach());
  }
}

template <class Q>
void load_translator_state(Q& q, torch::serialize::InputArchive& archive) {
  if constexpr (requires { q.load(archive); }) {
    q.load(archive);
  } else {
    torch::NoGradGuard no_grad;
    auto params = q.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor t;
      archive.read("p" + std::to_string(i), t);
      if (!t.sizes().equals(params[i].sizes()))
        fail("translator parameter ", i, " has shape ", shape_of(t), ", expected ", shape_of(params[i]));
      params[i].copy_(t);
    }
  }
}

template <class Q>
void write_checkpoint(const std::string& path, const option_record& options, const Q& q,
                      const checkpoint_state& s) {
  torch::serialize::OutputArchive archive;
  auto scalar = [](int64_t v) { return torch::tensor({v}, torch::kLong); };
  archive.write("tr0n_checkpoint_version", scalar(training_checkpoint_version));
  archive.write("options", bytes_tensor(record_text(options)));
  archive.write("seed", scalar(static_cast<int64_t>(s.seed)));
  archive.write("step", scalar(s.step));
  archive.write("skipped", scalar(s.skipped));
  archive.write("losses", s.losses.to(torch::kCPU, torch::kFloat64));
  archive.write("late_reach", torch::tensor({s.late_reach}, torch::kFloat64));
  archive.write("world_size", scalar(static_cast<int64_t>(s.streams.size())));
  archive.write("libtorch_version", bytes_tensor(TORCH_VERSION));
  for (size_t r = 0; r < s.streams.size(); ++r) {
    const auto& st = s.streams[r];
    const auto rank = static_cast<int64_t>(r);
    archive.write(stream_field(rank, "rng"), st.rng.cpu());
    archive.write(stream_field(rank, "host_rng"), bytes_tensor(st.host_rng));
    if (st.order.defined()) {
      archive.write(stream_field(rank, "order"), st.order.cpu());
      archive.write(stream_field(rank, "cursor"), scalar(st.cursor));
    }
  }
  archive.write("adam_t", s.adam_t.cpu());
  archive.write("adam_count", scalar(static_cast<int64_t>(s.m.size())));
  for (size_t i = 0; i < s.m.size(); ++i) {
    archive.write("adam_m" + std::to_string(i), s.m[i].cpu());
    archive.write("adam_v" + std::to_string(i), s.v[i].cpu());
  }
  if (s.initial_log_std.defined()) archive.write("initial_log_std", s.initial_log_std.cpu());
  if (s.late_log_std.defined()) archive.write("late_log_std", s.late_log_std.cpu());
  torch::serialize::OutputArchive translator;
  save_translator_state(q, translator);
  archive.write("translator", translator);
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomically(path, bytes.str());
}

/// A checkpoint's archive, read field by field; every failure names the
/// checkpoint and the field.
class checkpoint_reader {
 public:
  checkpoint_reader(std::string bytes, const std::string& name) : where_("checkpoint " + name) {
    if (bytes.empty()) fail(where_, ": empty file, expected a tr0n training checkpoint");
    check_archive(bytes, where_);
    try {
      std::istringstream archive_bytes(std::move(bytes));
      archive_.load_from(archive_bytes);
    } catch (const std::exception& e) {
      fail(where_, ": not a tr0n training checkpoint (", brief(e), ")");
    }
  }

  const std::string& where() const noexcept { return where_; }

  torch::Tensor read(const std::string& key, bool required = true) {
    torch::Tensor t;
    bool found = false;
    try {
      found = archive_.try_read(key, t);
    } catch (const std::exception& e) {
      fail(where_, ": field ", key, " cannot be read (", brief(e), ")");
    }
    if (!found && required) fail(where_, ": field ", key, " is missing (not a whole tr0n training checkpoint)");
    return t;
  }
  int64_t integer(const std::string& key) {
    auto t = read(key);
    if (t.scalar_type() != torch::kLong || t.numel() != 1) fail(where_, ": field ", key, " is not one int64");
    return t.item<int64_t>();
  }
  double real(const std::string& key) {
    auto t = read(key);
    if (t.scalar_type() != torch::kDouble || t.numel() != 1) fail(where_, ": field ", key, " is not one float64");
    return t.item<double>();
  }

  /// The format version and the number of processes that wrote it, which must be `world_size`.
  int64_t check_header(int64_t world_size) {
    if (!read("tr0n_checkpoint_version", false).defined())
      fail(where_, ": not a tr0n training checkpoint (it has no format version)");
    const auto version = integer("tr0n_checkpoint_version");
    if (version < 1 || version > training_checkpoint_version)
      fail(where_, ": format version ", version, ", but this tr0n reads versions 1 to ", training_checkpoint_version,
           " (written by another tr0n version: start the run again)");
    const int64_t written_by = version >= 2 ? integer("world_size") : 1;
    if (written_by < 1 || written_by > (int64_t{1} << 20)) fail(where_, ": field world_size is ", written_by);
    if (written_by != world_size)
      fail(where_, ": written by a run of ", written_by, written_by == 1 ? " process" : " processes",
           ", but this run has ", world_size, ": resume it with ", written_by, written_by == 1 ? " process" : " processes",
           " (each process's random streams are in it)");
    return written_by;
  }

  /// What a checkpoint written before `key` was recorded ran with: float32,
  /// and none of the noises added since.
  static std::string recorded_default(const std::string& key) {
    if (key == "precision") return "fp32";
    if (key == "feature_noise" || key == "noise_cosine") return "0";
    if (key == "adaptive_feature_noise") return "false";
    return "(none)";
  }

  /// Every option must match, each difference named.
  void check_options(const option_record& options) {
    auto theirs = read("options");
    if (theirs.scalar_type() != torch::kUInt8 || theirs.dim() != 1) fail(where_, ": field options is not text");
    const auto saved = parse_record(tensor_bytes(theirs));
    std::string diffs;
    for (const auto& [key, value] : options) {
      const auto it = saved.find(key);
      const std::string was = it != saved.end() ? it->second : recorded_default(key);
      if (was != value) diffs += (diffs.empty() ? "" : "; ") + key + " = " + was + " there, " + value + " here";
    }
    if (!diffs.empty())
      fail(where_, ": written with other training options (", diffs, "): resume with the options it was written with");
  }

  /// The seed (which must be `seed`, when given), the steps done, the losses and the scale's bookkeeping.
  void read_progress(checkpoint_state& s, std::optional<uint64_t> seed, int64_t steps) {
    const auto libtorch = read("libtorch_version", false);
    s.libtorch = libtorch.defined() ? tensor_bytes(libtorch) : std::string();
    s.seed = static_cast<uint64_t>(integer("seed"));
    if (seed && *seed != s.seed) fail(where_, ": written with seed = ", s.seed, ", but this run has seed = ", *seed);
    s.step = integer("step");
    if (s.step < 0 || s.step > steps) fail(where_, ": step ", s.step, " is outside [0, steps = ", steps, "]");
    s.skipped = integer("skipped");
    if (s.skipped < 0 || s.skipped > s.step) fail(where_, ": skipped ", s.skipped, " is outside [0, step]");
    s.losses = read("losses");
    if (s.losses.scalar_type() != torch::kDouble || s.losses.dim() != 1 || s.losses.size(0) != s.step)
      fail(where_, ": field losses is not float64 [", s.step, "]");
    s.late_reach = real("late_reach");
    s.initial_log_std = read("initial_log_std", false);
    s.late_log_std = read("late_log_std", false);
  }

  /// Process `rank`'s random streams, and its place in the synthetic set (of `dataset_size` pairs).
  stream_state read_streams(int64_t rank, int64_t dataset_size, bool started) {
    stream_state st;
    const auto rng = stream_field(rank, "rng"), host_rng = stream_field(rank, "host_rng");
    st.rng = read(rng);
    if (st.rng.scalar_type() != torch::kUInt8 || st.rng.dim() != 1)
      fail(where_, ": field ", rng, " is not a generator state");
    st.host_rng = tensor_bytes(read(host_rng));
    {
      std::istringstream host(st.host_rng);
      std::mt19937_64 engine;
      if (!(host >> engine)) fail(where_, ": field ", host_rng, " is not an engine state");
    }
    if (dataset_size == 0) return st;
    const auto order = stream_field(rank, "order"), cursor = stream_field(rank, "cursor");
    st.order = read(order, started);
    if (!st.order.defined()) return st;
    if (st.order.scalar_type() != torch::kLong || st.order.dim() != 1 || st.order.size(0) != dataset_size ||
        st.order.min().item<int64_t>() < 0 || st.order.max().item<int64_t>() >= dataset_size)
      fail(where_, ": field ", order, " is not a permutation of the ", dataset_size, " pairs");
    st.cursor = integer(cursor);
    if (st.cursor < 0 || st.cursor > dataset_size) fail(where_, ": field ", cursor, " = ", st.cursor, " is outside the set");
    return st;
  }

  /// Loads the translator's state into `q`.
  template <class Q>
  void read_translator(Q& q) {
    torch::serialize::InputArchive translator;
    bool found = false;
    try {
      found = archive_.try_read("translator", translator);
    } catch (const std::exception& e) {
      fail(where_, ": field translator cannot be read (", brief(e), ")");
    }
    if (!found) fail(where_, ": field translator is missing (not a whole tr0n training checkpoint)");
    try {
      load_translator_state(q, translator);
    } catch (const std::exception& e) {
      auto why = brief(e);
      if (why.rfind("tr0n: ", 0) == 0) why = why.substr(6);
      fail(where_, ": its translator does not match this run's (", why, ")");
    }
  }

  /// Adam's step count and moments, one pair per parameter of `params`, each of its dtype and shape.
  void read_adam(checkpoint_state& s, const std::vector<torch::Tensor>& params) {
    s.adam_t = read("adam_t");
    if (s.adam_t.scalar_type() != torch::kDouble || s.adam_t.numel() != 1)
      fail(where_, ": field adam_t is not one float64");
    if (const auto count = integer("adam_count"); count != static_cast<int64_t>(params.size()))
      fail(where_, ": holds Adam state for ", count, " parameters, the translator has ", params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      for (auto* list : {&s.m, &s.v}) {
        auto t = read((list == &s.m ? "adam_m" : "adam_v") + std::to_string(i));
        if (t.scalar_type() != params[i].scalar_type() || !t.sizes().equals(params[i].sizes()))
          fail(where_, ": Adam state ", i, " is ", t.scalar_type(), " ", shape_of(t), ", the parameter is ",
               params[i].scalar_type(), " ", shape_of(params[i]));
        list->push_back(t);
      }
    }
  }

 private:
  std::string where_;
  torch::serialize::InputArchive archive_;
};

/// Reads a checkpoint written for `options` (a run of `steps` steps) into `q`
/// and returns the rest of the run's state; `params` are `q`'s parameters, in
/// the order Adam holds them; `world_size` is the run's number of processes,
/// which must be the checkpoint's. Every failure names `name` and the field.
template <class Q>
checkpoint_state read_checkpoint(std::string bytes, const std::string& name, const option_record& options,
                                 std::optional<uint64_t> seed, Q& q, const std::vector<torch::Tensor>& params,
                                 int64_t steps, int64_t dataset_size, int64_t world_size = 1) {
  checkpoint_reader in(std::move(bytes), name);
  const auto written_by = in.check_header(world_size);
  in.check_options(options);
  checkpoint_state s;
  in.read_progress(s, seed, steps);
  for (int64_t r = 0; r < written_by; ++r) s.streams.push_back(in.read_streams(r, dataset_size, s.step > 0));
  in.read_translator(q);
  in.read_adam(s, params);
  return s;
}

/// The same, from a stream (read to its end).
template <class Q>
checkpoint_state read_checkpoint(std::istream& in, const std::string& name, const option_record& options,
                                 std::optional<uint64_t> seed, Q& q, const std::vector<torch::Tensor>& params,
                                 int64_t steps, int64_t dataset_size, int64_t world_size = 1) {
  return read_checkpoint(stream_bytes(in), name, options, seed, q, params, steps, dataset_size, world_size);
}

/// Puts a process's random streams back as the checkpoint left them;
/// `libtorch` is the version that wrote them (`checkpoint_state::libtorch`).
inline void restore_streams(const stream_state& s, at::Generator& gen, std::mt19937_64& host,
                            const std::string& name, const std::string& libtorch = TORCH_VERSION) {
  try {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s.rng);
  } catch (const std::exception& e) {
    if (libtorch != TORCH_VERSION)
      fail("checkpoint ", name, ": its ", s.rng.numel(), "-byte generator state was written by LibTorch ",
           libtorch.empty() ? std::string("(not recorded: an earlier tr0n wrote it)") : libtorch, ", and this LibTorch (",
           TORCH_VERSION, ") cannot take it for its ", gen.device().type(),
           " generator (CUDA's state is 816 bytes in 1.13 and 16 in 2.x): resume with the LibTorch that wrote it",
           ", or start the run again");
    fail("checkpoint ", name, ": field rng is not a state of this device's generator (", brief(e), ")");
  }
  std::istringstream in(s.host_rng);
  in >> host;
}

}  // namespace detail
}  // namespace tr0n
