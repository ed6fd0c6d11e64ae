#pragma once
// What the tool's subcommands share: flags, the prior and energy chosen on the
// command line, image reading, and the start-up line.
#include <tr0n.hpp>
#include <tr0n/adapters/torchscript.hpp>
#include <tr0n/runtime/threads.hpp>
#ifdef TR0N_WITH_DISTRIBUTED
#include <tr0n/distributed/process_group.hpp>
#include <tr0n/distributed/sample.hpp>
#include <tr0n/distributed/train.hpp>
#endif

#include <CLI/CLI.hpp>
#include <stb_image.h>
#include <torch/cuda.h>
#include <torch/nn/functional/upsampling.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tr0n_cli {

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char ch : s) {
    if (ch == sep) {
      out.emplace_back();
    } else {
      out.back().push_back(ch);
    }
  }
  return out;
}

inline double number(const std::string& s, const char* what) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  tr0n::detail::fail(what, ": expected a number, got '", s, "'");
}

/// The prior chosen on the command line. Type erasure is fine here: it is
/// called once per run to draw starts, and for a box lookup per step.
class cli_prior {
 public:
  static cli_prior parse(const std::string& spec, int64_t dim) {
    auto fields = split(spec, ':');
    if (fields[0] == "normal" && fields.size() == 1) return cli_prior(dim, tr0n::standard_normal(dim), std::nullopt);
    if (fields[0] == "truncated" && fields.size() == 2) {
      tr0n::truncated_normal p(dim, number(fields[1], "--prior truncated:R"));
      return cli_prior(dim, p, p.box());
    }
    if (fields[0] == "uniform" && (fields.size() == 1 || fields.size() == 3)) {
      tr0n::uniform p = fields.size() == 1 ? tr0n::uniform(dim)
                                           : tr0n::uniform(dim, number(fields[1], "--prior uniform:LO:HI"),
                                                           number(fields[2], "--prior uniform:LO:HI"));
      return cli_prior(dim, p, p.box());
    }
    tr0n::detail::fail("--prior: expected normal, truncated:R or uniform[:LO:HI], got '", spec, "'");
  }

  int64_t dim() const { return dim_; }
  torch::Tensor sample(int64_t n, torch::TensorOptions o) const { return sample_(n, o); }
  tr0n::box box() const {
    const double inf = std::numeric_limits<double>::infinity();
    return box_.value_or(tr0n::box{-inf, inf});
  }

 private:
  template <class P>
  cli_prior(int64_t dim, P p, std::optional<tr0n::box> b)
      : dim_(dim), sample_([p](int64_t n, torch::TensorOptions o) { return p.sample(n, o); }), box_(b) {}

  int64_t dim_;
  std::function<torch::Tensor(int64_t, torch::TensorOptions)> sample_;
  std::optional<tr0n::box> box_;
};

/// The energy chosen on the command line: one type, a switch per evaluation.
struct cli_energy {
  using tr0n_tag = tr0n::energy_tag;
  enum class kind { cross_entropy, neg_cosine, squared } which;
  int64_t augment_copies = 0;

  static cli_energy parse(const std::string& name, int64_t augment) {
    return {name == "cross_entropy" ? kind::cross_entropy : name == "squared" ? kind::squared : kind::neg_cosine,
            augment};
  }

  void check_conditions(const torch::Tensor& c, std::string_view where) const {
    if (which == kind::cross_entropy) tr0n::cross_entropy::check_conditions(c, where);
  }

  template <class Ctx>
  torch::Tensor operator()(const Ctx& ctx) const {
    switch (which) {
      case kind::cross_entropy: return tr0n::cross_entropy{}(ctx);
      case kind::squared: return tr0n::squared_distance{}(ctx);
      case kind::neg_cosine: break;
    }
    if (augment_copies > 0) return tr0n::augmented_neg_cosine<>{.copies = augment_copies}(ctx);
    return tr0n::neg_cosine{}(ctx);
  }
};

/// The largest image a condition may come from (16.7 megapixels; it is
/// resized to the generator's output anyway). A header that declares more is
/// refused before any pixel is decoded: stb sizes its first buffer from the
/// header (fuzzing made it ask for 1.5 GB).
inline constexpr int64_t max_image_pixels = int64_t{1} << 24;

/// stb's failure reason, printable and on one line (it can quote a chunk's raw bytes).
inline std::string stb_reason(const char* fallback) {
  const char* reason = stbi_failure_reason();
  return tr0n::detail::printable(reason && *reason ? reason : fallback);
}

/// Decodes a PNG/JPEG's bytes into [1, C, H, W] in [0, 1], resized (bilinear)
/// to `like`'s shape; `name` names it in errors.
inline torch::Tensor decode_image(const std::vector<char>& bytes, const std::string& name, const torch::Tensor& like) {
  // PNG and JPEG only (stb reads more formats; fewer decoders, less to go wrong).
  auto starts_with = [&](std::string_view magic) {
    return bytes.size() >= magic.size() && std::string_view(bytes.data(), magic.size()) == magic;
  };
  const bool png = starts_with("\x89PNG\r\n\x1a\n"), jpeg = starts_with("\xff\xd8\xff");
  if (!bytes.empty() && !png && !jpeg)
    tr0n::detail::fail("--condition-image: ", name, ": cannot be read as an image (not a PNG or JPEG file)");
  if (png) {
    // Every chunk inside the file: stb grows its buffer to a chunk's declared
    // length before reading it (fuzzing made it ask for 1.5 GB on a 4 x 4 image).
    // Up to IEND, every chunk (length, type, data, CRC) whole; what follows IEND is ignored, as stb does.
    for (size_t at = 8; at < bytes.size();) {
      const auto b = [&](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])); };
      const uint64_t length = bytes.size() - at >= 12 ? (b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3)) : 0;
      if (bytes.size() - at < 12 || length > bytes.size() - at - 12)
        tr0n::detail::fail("--condition-image: ", name, ": cannot be read as an image (a PNG chunk runs past the "
                           "end of the file: truncated?)");
      if (std::string_view(bytes.data() + at + 4, 4) == "IEND") break;
      at += 12 + length;
    }
  }
  const auto* buffer = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, n = 0;
  if (bytes.empty() || !stbi_info_from_memory(buffer, size, &w, &h, &n))
    tr0n::detail::fail("--condition-image: ", name, ": cannot be read as an image (",
                       bytes.empty() ? std::string("empty file") : stb_reason("unknown format"), ")");
  if (int64_t{w} * h > max_image_pixels)
    tr0n::detail::fail("--condition-image: ", name, ": ", w, " x ", h, " pixels, more than the ", max_image_pixels,
                       " this tool reads");
  const int channels = static_cast<int>(like.size(1));
  unsigned char* data = stbi_load_from_memory(buffer, size, &w, &h, &n, channels);
  if (!data)
    tr0n::detail::fail("--condition-image: ", name, ": cannot be read as an image (",
                       stb_reason("corrupt or truncated data"), ")");
  auto img = torch::from_blob(data, {h, w, channels}, torch::kUInt8).clone();
  stbi_image_free(data);
  auto x = img.permute({2, 0, 1}).unsqueeze(0).to(like.options()).div_(255.0);
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{like.size(2), like.size(3)})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

/// Reads a PNG/JPEG file (see `decode_image`).
inline torch::Tensor read_image(const std::string& path, const torch::Tensor& like) {
  if (!std::filesystem::exists(path)) tr0n::detail::fail("--condition-image: ", path, ": file not found");
  return decode_image(tr0n::read_bytes(path), path, like);
}

/// The energy and dynamics flags of `sample` and `serve`. Defaults: ten small
/// gradient steps with the official code's SGLD noise (0.01). Exact Langevin
/// noise, sqrt(2 eta), on an energy without a prior term random-walks the
/// chains and loses what the translator's start gave (measured: lower
/// accuracy than no steps at all).
///
/// The default step depends on the energy, whose gradients differ in scale:
///  - cross_entropy and squared: 0.03. On the Fashion-MNIST job's models, 10
///    steps of 0.01 / 0.03 / 0.05 took the evaluation accuracy of the
///    translator's start from 0.85 to 0.907 / 0.928 / 0.932 (seed 0).
///  - neg_cosine: 1. A cosine's gradient is bounded; on the text job's small
///    CLIP and class prompts, 10 steps of 1 score best of 0.03, 0.3 and 1
///    (benchmarks/tool_text_steps.sh; its table is in the README).
struct dynamics_flags {
  std::string energy;
  tr0n::precision precision = tr0n::precision::fp32;  ///< from --precision (run_setup)
  int64_t augment = 0;
  double step_size = 0, noise_std = 0.01, momentum = 0, grad_clip = 0;
  /// The step size: the flag's, else the energy's default.
  double step() const { return step_size > 0 ? step_size : energy == "neg_cosine" ? 1.0 : 0.03; }
};

/// `--energy` when the flag is left out: what the conditions' space implies
/// (softmax: class probabilities, so cross_entropy; l2: unit embeddings, so
/// neg_cosine). `space`: the translator's condition stage, if any.
inline void resolve_energy(dynamics_flags& d, std::optional<tr0n::condition_transform> space) {
  if (!d.energy.empty()) return;
  if (!space)
    tr0n::detail::fail("--energy: needed without a translator (cross_entropy | neg_cosine | squared)");
  if (*space == tr0n::condition_transform::softmax) {
    d.energy = "cross_entropy";
  } else if (*space == tr0n::condition_transform::l2) {
    d.energy = "neg_cosine";
  } else {
    tr0n::detail::fail("--energy: needed: the translator's conditions are raw features (condition stage none), "
                       "which imply no energy (cross_entropy | neg_cosine | squared)");
  }
}

/// The energy and the dynamics.
inline void add_dynamics(CLI::App* cmd, dynamics_flags& d) {
  cmd->add_option("--energy", d.energy,
                  "cross_entropy | neg_cosine | squared (default: from the translator's condition stage, "
                  "softmax: cross_entropy, l2: neg_cosine)")
      ->check(CLI::IsMember({"cross_entropy", "neg_cosine", "squared"}));
  cmd->add_option("--augment", d.augment, "neg_cosine over N augmented copies (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--step-size", d.step_size, "Step size eta (default: 0.03, or 1 for neg_cosine)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--noise-std", d.noise_std, "Langevin noise std per step (sqrt(2 * eta) is exact Langevin)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--momentum", d.momentum, "Momentum on the gradient (official: 0.99)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  cmd->add_option("--grad-clip", d.grad_clip, "Per-sample gradient-norm clipping (0: off; official: 1)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

/// Flags every subcommand takes.
struct common_flags {
  std::string generator, encoder, prior = "normal", device = "cpu";
  int64_t latent_dim = 0;
  int threads = 0;
  std::optional<uint64_t> seed;
  std::string dist_backend = "gloo";
  double dist_timeout = 300;
  std::vector<int64_t> image_shape;  ///< C, H, W for a generator with flat output
  std::string precision = "auto";    ///< what G and f compute in (auto: run_setup::start)
};

/// `--image-shape`'s check: three positive sizes, C = 1 or 3.
inline void check_image_shape(const std::vector<int64_t>& shape) {
  if (shape.empty()) return;
  if (shape.size() != 3 || shape[1] < 1 || shape[2] < 1 || (shape[0] != 1 && shape[0] != 3))
    tr0n::detail::fail("--image-shape: expected C,H,W with C = 1 or 3 and positive H and W");
}

/// G's output `x` [B, ...] as images [B, C, H, W]: reshaped by `--image-shape`
/// when given, else as it is when it already is one (C = 1 or 3). Anything
/// else fails with one line naming the shapes and the flag.
inline torch::Tensor as_images(const torch::Tensor& x, const std::vector<int64_t>& shape) {
  check_image_shape(shape);
  const auto batch = x.size(0), per_sample = x.numel() / std::max<int64_t>(1, x.size(0));
  if (!shape.empty()) {
    if (shape[0] * shape[1] * shape[2] != per_sample)
      tr0n::detail::fail("--image-shape ", shape[0], ",", shape[1], ",", shape[2], ": ", shape[0] * shape[1] * shape[2],
                         " values an image, but the generator's output ", tr0n::detail::shape_of(x), " has ",
                         per_sample, " a sample");
    return x.reshape({batch, shape[0], shape[1], shape[2]});
  }
  if (x.dim() != 4 || (x.size(1) != 1 && x.size(1) != 3))
    tr0n::detail::fail("the generator's output ", tr0n::detail::shape_of(x),
                       " is not an image [B, C, H, W] with C = 1 or 3: give --image-shape C,H,W (C*H*W = ",
                       per_sample, ")");
  return x;
}

inline void add_common(CLI::App* cmd, common_flags& f, bool latent_required) {
  cmd->add_option("--generator", f.generator, "TorchScript generator: z [B, d] -> x")->required();
  cmd->add_option("--encoder", f.encoder, "TorchScript encoder: x -> [B, C]")->required();
  auto* latent = cmd->add_option("--latent-dim", f.latent_dim, "Latent width d")->check(CLI::PositiveNumber);
  if (latent_required) latent->required();
  cmd->add_option("--prior", f.prior, "normal | truncated:R | uniform[:LO:HI]")->capture_default_str();
  cmd->add_option("--device", f.device, "cpu, cuda, cuda:1, ...")->capture_default_str();
  cmd->add_option("--threads", f.threads,
                  "CPU threads (0: every core); they go to the pool that runs the matrix products, so "
                  "LibTorch's and OpenBLAS's pools never oversubscribe the cores")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seed for reproducible runs");
  cmd->add_option("--precision", f.precision,
                  "What the generator and the encoder compute in: fp32, bf16 (fast on CPUs with AVX512_BF16, and "
                  "on GPUs) or fp16 (CUDA only); latents, energies and updates stay float32. auto: bf16 for sample "
                  "on a CPU with AVX512_BF16 (measured: same quality, 2-3x the speed), else fp32")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}))
      ->capture_default_str();
  cmd->add_option("--image-shape", f.image_shape,
                  "C,H,W: how a flat generator output [B, C*H*W] is an image (checked at start; sample writes x "
                  "as [N, C, H, W], serve draws it)")
      ->delimiter(',')
      ->expected(3);
  cmd->add_option("--dist-backend", f.dist_backend,
                  "Started by torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set): how the processes talk "
                  "(gloo: CPU; nccl: CUDA)")
      ->check(CLI::IsMember({"gloo", "nccl"}))
      ->capture_default_str();
  cmd->add_option("--dist-timeout", f.dist_timeout,
                  "Started by torchrun: seconds to wait for the other processes, to connect and at every exchange, "
                  "before failing with an error (a process that died, or never came)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

/// The translator of `--translator` (none for an empty path), with the latent
/// width: `--latent-dim` if given (it must match), else the translator's.
struct loaded_translator {
  std::optional<tr0n::mixture_translator> q;
  int64_t latent_dim = 0;
};
inline loaded_translator load_translator(const std::string& path, int64_t latent_dim, torch::Device device) {
  loaded_translator out{std::nullopt, latent_dim};
  if (!path.empty()) {
    out.q = tr0n::load_mixture_translator(path, device);
    (*out.q)->eval();
    const auto d = (*out.q)->latent_dim();
    if (out.latent_dim == 0) out.latent_dim = d;
    if (out.latent_dim != d)
      tr0n::detail::fail("--latent-dim ", out.latent_dim, " does not match the translator's latent_dim ", d);
  }
  if (out.latent_dim == 0) tr0n::detail::fail("--latent-dim: needed without a translator");
  return out;
}

/// A text tower (`--text-encoder`) and its tokenisation: `--vocabulary` if
/// given, else the tower's own.
struct text_tower {
  tr0n::torchscript_text_encoder encoder;
  tr0n::word_tokenizer tokens;
  static text_tower load(const std::string& path, const std::string& vocabulary, tr0n::torchscript_options options) {
    tr0n::torchscript_text_encoder encoder(path, options);
    auto tokens =
        vocabulary.empty() ? encoder.tokenizer() : tr0n::word_tokenizer::read(vocabulary, encoder.context_length());
    return {std::move(encoder), std::move(tokens)};
  }
};

/// The tool's one vocabulary of starts: `--init` of `tr0n sample` and the
/// "init" of `tr0n serve`'s API.
inline constexpr const char* init_words = "prior, translator_sample, translator_mode, translator_mixture or best_of:N";

/// N of `best_of:N`.
inline int64_t best_of_count(const std::string& init) {
  int64_t n = 0;
  try {
    size_t used = 0;
    n = std::stoll(init.substr(8), &used);
    if (used != init.size() - 8) n = 0;
  } catch (const std::exception&) {
  }
  if (n < 1 || n > 4096) tr0n::detail::fail("best_of:N: expected N in [1, 4096], got '", init.substr(8), "'");
  return n;
}

/// Checks a start's name (`what` names its source in errors) and that it has
/// the translator it needs (`missing` says how to give one).
inline void check_init(const std::string& init, bool has_translator, const char* what,
                       const char* missing = "--translator (only --init prior samples without one)") {
  const bool best_of = init.rfind("best_of:", 0) == 0;
  if (init != "prior" && init != "translator_sample" && init != "translator_mode" && init != "translator_mixture" &&
      !best_of)
    tr0n::detail::fail(what, ": expected ", init_words, ", got '", init, "'");
  if (best_of) best_of_count(init);
  if (init != "prior" && !has_translator)
    tr0n::detail::fail(what, " ", init, ": needs ", missing);
}

/// `run(sampler)` with the sampler whose start `init` names (see `check_init`).
template <class G, class F, class E, class Schedule, class Noise, class Run>
tr0n::sample_result with_sampler(const std::string& init, G& g, F& f, const E& energy,
                                 std::optional<tr0n::mixture_translator>& q, const tr0n::sampler_options& opts,
                                 const Schedule& schedule, const Noise& noise, Run&& run) {
  auto from = [&](auto start) {
    tr0n::sampler s(g, f, energy, *q, opts, start, schedule, noise);
    return run(s);
  };
  if (init == "prior") {  // the prior start needs no translator, with or without one loaded
    tr0n::sampler s(g, f, energy, opts, tr0n::init::prior{}, schedule, noise);
    return run(s);
  }
  if (init == "translator_sample") return from(tr0n::init::translator_sample{});
  if (init == "translator_mode") return from(tr0n::init::translator_mode{});
  if (init == "translator_mixture") return from(tr0n::init::translator_mixture{});
  return from(tr0n::init::best_of<>{.candidates = best_of_count(init)});
}

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
      tr0n::detail::fail("--precision ", f.precision, ": needs --device cuda (on the CPU, LibTorch's autocast runs bf16 "
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
      tr0n::detail::fail("--device ", s, ": not a device (cpu, cuda, cuda:1, ...)");
    }
    if (d->is_cuda()) {
      if (!torch::cuda::is_available())
        tr0n::detail::fail("--device ", s, ": this LibTorch build has no CUDA support, or no GPU is visible");
      if (d->has_index() && d->index() >= static_cast<int>(torch::cuda::device_count()))
        tr0n::detail::fail("--device ", s, ": there are only ", torch::cuda::device_count(), " CUDA devices");
    } else if (!d->is_cpu()) {
      tr0n::detail::fail("--device ", s, ": only cpu and cuda devices are supported");
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
        tr0n::detail::fail("--dist-backend nccl: this tr0n was built with Gloo only (LibTorch without NCCL); "
                           "use gloo with --device cpu");
      if (!device.is_cpu())
        tr0n::detail::fail("--dist-backend gloo: runs on CPU tensors; use --device cpu (or nccl for CUDA)");
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
