#pragma once
/// \file
/// Adapters that make a TorchScript file (exported from Python with
/// `torch.jit.trace`/`torch.jit.script` and `.save`) a tr0n `Generator` or
/// `Encoder`, or a text encoder for conditions.
///
/// At load each adapter moves the module to the chosen device and dtype,
/// freezes its parameters, and probes it once with a dummy batch: it throws
/// `tr0n::model_load_error`, naming the file and the problem, when the file is
/// missing or is not TorchScript, when the output is not a tensor of the shape
/// and dtype the role needs, or when the output is not differentiable with
/// respect to the input.
///
/// Not part of `<tr0n.hpp>` (it pulls in the TorchScript runtime): include
/// `<tr0n/adapters/torchscript.hpp>`.
///
/// ```
/// tr0n::torchscript_generator g("stylegan.pt", tr0n::standard_normal(512), tr0n::torchscript_options().device(torch::kCUDA));
/// tr0n::torchscript_encoder clip("clip_image.pt", g.example_output());
/// ```
#include <tr0n/concepts/encoder.hpp>
#include <tr0n/concepts/generator.hpp>
#include <tr0n/concepts/prior.hpp>
#include <tr0n/concepts/tags.hpp>
#include <tr0n/text/word_tokenizer.hpp>
#include <tr0n/detail/archive.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/files.hpp>
#include <tr0n/runtime/allocator.hpp>
#include <tr0n/runtime/precision.hpp>

#include <torch/autograd.h>
#include <torch/script.h>
#include <torch/types.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tr0n {

struct model_load_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct torchscript_options {
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
  /// Rows of the dummy batch used to probe the module at load.
  TORCH_ARG(int64_t, probe_batch) = 2;

 public:
  torch::TensorOptions tensor_options() const { return torch::TensorOptions(dtype_).device(device_); }
};

namespace detail {

template <class... Parts>
[[noreturn]] void load_fail(const std::string& path, const Parts&... parts) {
  std::ostringstream os;
  os << "tr0n: " << path << ": ";
  (os << ... << parts);
  throw model_load_error(os.str());
}

inline torch::jit::Module load_script(const std::string& path, const torchscript_options& options) {
  {
    std::string bytes;
    try {
      bytes = file_bytes(path);
    } catch (const std::invalid_argument& e) {
      throw model_load_error(e.what());  // "tr0n: PATH: file not found", as every load failure
    }
    try {
      check_archive(bytes, path);  // a damaged file never reaches LibTorch's importer
    } catch (const std::invalid_argument& e) {
      std::string why = e.what();
      const std::string prefix = "tr0n: " + path + ": ";
      if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
      load_fail(path, "not a TorchScript file (save one with torch.jit.save): ", why);
    }
  }  // the checked bytes are freed before the import, which reads the file again: a model is
     // never in memory twice (350 MB for CLIP ViT-B/32's image tower)
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, options.device());
  } catch (const std::exception& e) {
    load_fail(path, "not a TorchScript file (save one with torch.jit.save): ", brief(e));
  }
  module.eval();
  module.to(options.device(), options.dtype());
  for (auto p : module.parameters()) p.requires_grad_(false);
  return module;
}

inline std::string widths_string(const std::vector<int64_t>& widths) {
  std::string out;
  for (const auto w : widths) out += (out.empty() ? "" : ",") + std::to_string(w);
  return out;
}

/// How to re-export a module whose backward failed with `why`: the one known
/// case is the inference fast path of `nn.MultiheadAttention` (and of the
/// transformer layers built on it), which `torch.jit.trace` records when no
/// input and no parameter requires grad, and whose op has no derivative.
inline std::string reexport_hint(const std::string& why) {
  if (why.find("_native_multi_head_attention") == std::string::npos &&
      why.find("_transformer_encoder_layer_fwd") == std::string::npos)
    return "";
  return " (the file holds nn.MultiheadAttention's inference fast path, which has no derivative: re-export it with "
         "torch.jit.trace on an example input that requires grad, example.requires_grad_(True), or with "
         "torch.jit.script)";
}

/// The arguments of a module's `forward` for a latent `z` `[B, sum(parts)]`:
/// its columns cut into `parts.size()` tensors of those widths, in order (one
/// tensor, `z` itself, for one part or none).
inline std::vector<c10::IValue> script_inputs(const torch::Tensor& z, const std::vector<int64_t>& parts) {
  if (parts.size() <= 1) return {z};
  std::vector<c10::IValue> inputs;
  inputs.reserve(parts.size());
  int64_t first = 0;
  for (const auto width : parts) {
    inputs.emplace_back(z.narrow(1, first, width));
    first += width;
  }
  return inputs;
}

/// Runs `module` on `input` (cut into `parts`, see `script_inputs`); checks a floating tensor
/// output with `input`'s batch size and the declared dtype, then a gradient path to the input on
/// its first row alone (a backward holds the activations: at real size, hundreds of MB a row).
inline torch::Tensor probe(torch::jit::Module& module, const std::string& path, const std::string& role,
                           torch::Tensor input, const torchscript_options& options,
                           const std::vector<int64_t>& parts = {}) {
  input = input.detach();
  c10::IValue out;
  try {
    torch::NoGradGuard no_grad;
    out = module.forward(script_inputs(input, parts));
  } catch (const std::exception& e) {
    const auto arity = parts.size() <= 1 ? std::string("one input ") : std::to_string(parts.size()) + " inputs ";
    load_fail(path, "the ", role, " failed on a probe batch of shape ", shape_of(input),
              parts.size() <= 1 ? "" : " (cut into " + arity + "of widths " + widths_string(parts) + ")", ": ",
              brief(e));
  }
  if (!out.isTensor()) load_fail(path, "the ", role, " must return one tensor, got ", out.tagKind());
  auto y = out.toTensor();
  if (y.dim() < 1 || y.size(0) != input.size(0))
    load_fail(path, "the ", role, " must keep the batch size ", input.size(0), ", got output shape ", shape_of(y));
  if (y.scalar_type() != options.dtype())
    load_fail(path, "the ", role, " returned dtype ", y.scalar_type(), ", expected ", c10::toString(options.dtype()));
  torch::AutoGradMode grad_mode(true);
  auto row = input.narrow(0, 0, 1).clone().requires_grad_(true);
  torch::Tensor g;  // stays undefined when the output does not depend on the input
  try {
    const auto y1 = module.forward(script_inputs(row, parts)).toTensor();
    if (y1.requires_grad()) g = torch::autograd::grad({y1.sum()}, {row}, {}, false, false, /*allow_unused=*/true)[0];
  } catch (const std::exception& e) {
    load_fail(path, "the ", role, " cannot be differentiated with respect to its input: ", brief(e),
              reexport_hint(brief(e)));
  }
  if (!g.defined()) load_fail(path, "the ", role, "'s output is not differentiable with respect to its input");
  release_free_memory();  // the backward's blocks (hundreds of MB at real size) go back before the next load
  return y;
}

/// A deep copy of `module` with its float32 matrices in `dtype` (`lower_matrices`), made
/// without a float32 copy of them on the way: each matrix is lowered first and the copy takes
/// the lowered tensor in its place (through deepcopy's memo). A matrix whose storage another
/// parameter shares is copied, then lowered, so the memo never confuses the two.
inline torch::jit::Module lowered_deepcopy(const torch::jit::Module& module, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  std::unordered_map<const void*, int> users;  // parameters per storage
  for (const auto& t : module.parameters()) ++users[t.storage().unsafeGetStorageImpl()];
  c10::IValue::HashAliasedIValueMap memo;
  for (const auto& t : module.parameters())
    if (t.dim() >= 2 && t.scalar_type() == torch::kFloat32 && users[t.storage().unsafeGetStorageImpl()] == 1)
      memo[c10::IValue(t)] = c10::IValue(t.to(dtype));
  torch::jit::Module copy(module._ivalue()->deepcopy(memo));
  lower_matrices(copy, dtype);
  return copy;
}

/// Whether `module`, its matrices lowered, runs on `probe` under autocast at `p`.
inline bool runs_lowered(torch::jit::Module& module, precision p, const torch::Tensor& probe,
                         const std::vector<int64_t>& parts) {
  try {
    torch::NoGradGuard no_grad;
    precision_scope scope(p, probe.device());
    module.forward(script_inputs(probe, parts));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

/// Whether `module`'s handle is the only one on its object (`_ivalue()` returns a second).
inline bool sole_handle(const torch::jit::Module& module) { return module._ivalue().use_count() == 2; }

/// A copy of `module` with its matrices in `p` (see `lower_matrices`), or none
/// when that copy fails on `probe` under autocast (an op that autocast does not
/// cast, given a lowered matrix and a float32 input): autocast on `module` then.
inline std::optional<torch::jit::Module> lowered_script(const torch::jit::Module& module, precision p,
                                                        const torch::Tensor& probe,
                                                        const std::vector<int64_t>& parts = {}) {
  auto copy = lowered_deepcopy(module, autocast_dtype(p));
  if (!runs_lowered(copy, p, probe, parts)) return std::nullopt;
  return copy;
}

/// An adapter's lowered copies of its module (`lowered_script`), one per precision, made on first
/// use, and the precision the adapter was kept to (`keep_only`), if any.
class script_copies {
 public:
  /// What runs at `p`: `module` at fp32, else the copy for `p`, or `module` itself when the copy
  /// could not run (autocast on `module` then). After `keep_only(q)`, `module` at `q`, and an error
  /// at any other precision, naming `path`.
  torch::jit::Module& in(precision p, torch::jit::Module& module, const torch::Tensor& probe,
                         const std::vector<int64_t>& parts, const std::string& path) {
    if (only_) {
      if (p != *only_)
        load_fail(path, "this adapter was kept to ", to_string(*only_), " (keep_only), so it cannot run at ",
                  to_string(p), "; load the file again for that");
      return module;
    }
    if (p == precision::fp32) return module;
    auto& copy = copies_.get(p, [&](torch::ScalarType) { return lowered_script(module, p, probe, parts); });
    return copy ? *copy : module;
  }

  /// Makes `module` what runs at `p` (`in`), and keeps it to `p`: the float32 matrices are let go
  /// here, and freed unless a copy of the adapter made before still holds them. When nothing else
  /// holds `module` and no copy was made yet, its matrices are lowered in place, one at a time, so
  /// the model is never held twice; should it then fail under autocast (see `lowered_script`), the
  /// file is loaded again and run under autocast as it is.
  void keep_only(precision p, torch::jit::Module& module, const torch::Tensor& probe,
                 const std::vector<int64_t>& parts, const std::string& path) {
    if (only_ && *only_ == p) return;
    if (p != precision::fp32 && !copies_.made(p) && sole_handle(module)) {
      lower_matrices(module, autocast_dtype(p));
      if (!runs_lowered(module, p, probe, parts))
        module = load_script(path, torchscript_options().device(probe.device()).dtype(probe.scalar_type()));
    } else {
      torch::jit::Module runs = in(p, module, probe, parts, path);
      module = std::move(runs);
    }
    only_ = p;
  }

 private:
  lowered_copies<std::optional<torch::jit::Module>> copies_;
  std::optional<precision> only_;
};

}  // namespace detail

/// A TorchScript generator `z [B, d] -> x [B, ...]` with a prior declared by the user.
///
/// A generator with several latent inputs (BigGAN's `forward(z, y)`) takes a
/// partitioned prior (`joint_prior`, or any prior with `parts()`): its latent
/// is the concatenation of the inputs, and `forward` cuts it into them, in
/// order (`tr0n::latent_parts`). Everything else sees one latent.
template <Prior P>
class torchscript_generator {
 public:
  using tr0n_tag = generator_tag;

  torchscript_generator(const std::string& path, P prior, torchscript_options options = {})
      : path_(path), module_(detail::load_script(path, options)), prior_(std::move(prior)), options_(options),
        parts_(latent_parts(prior_)),
        probe_(prior_.sample(options_.probe_batch(), options_.tensor_options())) {
    example_ = detail::probe(module_, path_, "generator", probe_, options_, parts_);
  }

  torch::Tensor forward(const torch::Tensor& z) { return forward(z, precision::fp32); }
  /// At bf16 or fp16, runs a copy whose matrices are in that precision (made once).
  torch::Tensor forward(const torch::Tensor& z, precision p) {
    return lowered_.in(p, module_, probe_, parts_, path_).forward(detail::script_inputs(z, parts_)).toTensor();
  }
  /// From now on runs at `p` only, and holds the model once: at bf16 or fp16 the
  /// copy in that precision is made now and the float32 module let go (freed
  /// unless a copy of this adapter made before holds it), so a run at bf16
  /// holds half the weights instead of one and a half times them. `forward` at
  /// another precision throws `model_load_error` after. For a program that
  /// knows its precision once the models are loaded (`tr0n sample`).
  void keep_only(precision p) { lowered_.keep_only(p, module_, probe_, parts_, path_); }
  /// The widths of the module's latent inputs, in order.
  const std::vector<int64_t>& parts() const noexcept { return parts_; }
  const P& prior() const noexcept { return prior_; }
  /// The probe's output: a batch shaped like the generator's data, for probing an encoder.
  const torch::Tensor& example_output() const noexcept { return example_; }
  /// The module that runs at fp32 (after `keep_only`, the one that runs at its precision).
  torch::jit::Module& module() noexcept { return module_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  torch::jit::Module module_;
  P prior_;
  torchscript_options options_;
  std::vector<int64_t> parts_;
  torch::Tensor probe_, example_;
  detail::script_copies lowered_;
};

/// A TorchScript encoder `x [B, ...] -> [B, C]`; `C` is read off the probe.
class torchscript_encoder {
 public:
  using tr0n_tag = encoder_tag;

  /// `example_input`: a batch shaped like the data the encoder will see.
  torchscript_encoder(const std::string& path, const torch::Tensor& example_input, torchscript_options options = {})
      : path_(path), module_(detail::load_script(path, options)), probe_(example_input.to(options.tensor_options())) {
    auto y = detail::probe(module_, path_, "encoder", probe_, options);
    if (y.dim() != 2)
      detail::load_fail(path_, "the encoder must return features [B, C], got shape ", detail::shape_of(y));
    condition_dim_ = y.size(1);
  }

  torch::Tensor forward(const torch::Tensor& x) { return forward(x, precision::fp32); }
  /// At bf16 or fp16, runs a copy whose matrices are in that precision (made once).
  torch::Tensor forward(const torch::Tensor& x, precision p) {
    return lowered_.in(p, module_, probe_, {}, path_).forward({x}).toTensor();
  }
  /// From now on runs at `p` only, holding the model once (`torchscript_generator::keep_only`).
  void keep_only(precision p) { lowered_.keep_only(p, module_, probe_, {}, path_); }
  int64_t condition_dim() const noexcept { return condition_dim_; }
  torch::jit::Module& module() noexcept { return module_; }

 private:
  std::string path_;
  torch::jit::Module module_;
  torch::Tensor probe_;
  int64_t condition_dim_ = 0;
  detail::script_copies lowered_;
};

/// A TorchScript head `features [B, C] -> scores [B] or [B, 1]`, for the
/// `score` energy (an aesthetic predictor); probed on `example_features`.
/// Calls share the module, as copies of the other adapters do.
class torchscript_head {
 public:
  torchscript_head(const std::string& path, const torch::Tensor& example_features, torchscript_options options = {})
      : path_(path), module_(detail::load_script(path, options)) {
    const auto input = example_features.detach().to(options.tensor_options());
    auto y = detail::probe(module_, path_, "score head", input, options);
    if (y.numel() != input.size(0) || y.dim() > 2)
      detail::load_fail(path_, "the score head must give one score a sample, [B] or [B, 1]; for features ",
                        detail::shape_of(input), " it gave ", detail::shape_of(y));
  }

  torch::Tensor operator()(const torch::Tensor& features) const { return module_.forward({features}).toTensor(); }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  mutable torch::jit::Module module_;  // a handle: forward does not change what it holds
};

/// A TorchScript text encoder `token ids [N, L] (int64) -> embeddings [N, C]`, for
/// CLIP-style text conditions. Gradients are not needed here.
///
/// A tower that carries its tokenisation has the attributes `context_length`
/// (int) and `vocabulary` (List[str], see `word_tokenizer`); the text job's
/// small CLIP does. Then `torchscript_text_encoder(path)` reads the context
/// length, and `tokenizer()` and `encode_texts` work without a vocabulary file.
class torchscript_text_encoder {
 public:
  torchscript_text_encoder(const std::string& path, int64_t context_length, torchscript_options options = {})
      : path_(path), module_(detail::load_script(path, options)), options_(options), context_length_(context_length) {
    init();
  }

  /// For a tower with a `context_length` attribute.
  explicit torchscript_text_encoder(const std::string& path, torchscript_options options = {})
      : path_(path), module_(detail::load_script(path, options)), options_(options) {
    if (!module_.hasattr("context_length") || !module_.attr("context_length").isInt())
      detail::load_fail(path_, "the text encoder has no int attribute 'context_length'; give the context length");
    context_length_ = module_.attr("context_length").toInt();
    init();
  }

  /// The tower's own tokenisation, from its `vocabulary` attribute; throws
  /// `model_load_error` if it has none (then read a vocabulary file with
  /// `word_tokenizer::read`).
  word_tokenizer tokenizer() const {
    if (!module_.hasattr("vocabulary") || !module_.attr("vocabulary").isList())
      detail::load_fail(path_, "the text encoder has no List[str] attribute 'vocabulary'; give a vocabulary file");
    std::vector<std::string> vocabulary;
    for (const auto& w : module_.attr("vocabulary").toListRef()) {
      if (!w.isString()) detail::load_fail(path_, "the text encoder's 'vocabulary' holds a non-string");
      vocabulary.push_back(w.toStringRef());
    }
    try {
      return word_tokenizer(std::move(vocabulary), context_length_);
    } catch (const std::exception& e) {
      detail::load_fail(path_, "the text encoder's vocabulary: ", detail::brief(e));
    }
  }

  /// Embeddings [N, C] of `texts`, tokenised by `tokens`.
  torch::Tensor encode_texts(const word_tokenizer& tokens, const std::vector<std::string>& texts) {
    if (tokens.context_length() != context_length_)
      detail::fail("torchscript_text_encoder: the tokenizer's context length ", tokens.context_length(),
                   " is not the encoder's ", context_length_);
    return encode(tokens.encode(texts));
  }

  torch::Tensor encode(const torch::Tensor& tokens) {
    if (tokens.dim() != 2 || tokens.scalar_type() != torch::kLong)
      detail::fail("torchscript_text_encoder: tokens: expected int64 [N, L], got ", tokens.scalar_type(), " ",
                   detail::shape_of(tokens));
    torch::NoGradGuard no_grad;
    c10::IValue out;
    try {
      out = module_.forward({tokens.to(options_.device())});
    } catch (const std::exception& e) {
      detail::load_fail(path_, "the text encoder failed on tokens of shape ", detail::shape_of(tokens), ": ",
                        detail::brief(e));
    }
    if (!out.isTensor() || out.toTensor().dim() != 2 || out.toTensor().size(0) != tokens.size(0))
      detail::load_fail(path_, "the text encoder must return embeddings [N, C]");
    return out.toTensor().to(options_.dtype());
  }
  int64_t condition_dim() const noexcept { return condition_dim_; }
  int64_t context_length() const noexcept { return context_length_; }

 private:
  void init() {
    detail::check_positive(context_length_, "torchscript_text_encoder: context_length");
    if (context_length_ > 1'000'000) detail::load_fail(path_, "context length ", context_length_, " is implausible");
    auto y = encode(torch::zeros({options_.probe_batch(), context_length_}, torch::kLong));
    condition_dim_ = y.size(1);
  }

  std::string path_;
  torch::jit::Module module_;
  torchscript_options options_;
  int64_t context_length_ = 0;
  int64_t condition_dim_ = 0;
};

static_assert(Encoder<torchscript_encoder>);

}  // namespace tr0n
