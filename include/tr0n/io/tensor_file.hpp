#pragma once
/// \file
/// Tensor files shared with Python: what `torch.save` writes, `read_tensor_file`
/// reads, and what `write_samples` writes, `torch.load` reads, also with
/// `weights_only=True` (plain dicts and tensors, no type tags).
///  - Conditions: a float tensor `[N, C]`, or an int64 tensor `[N]` of class labels.
///  - Samples: a dict `{"z": [M, d], "x": G(z), "energy": [M], "ok": bool [M]}`,
///    plus `"conditions": [N, C]` (the conditions as the sampler received them,
///    after any image or label conversion) when given.
#include <tr0n/io/atomic_file.hpp>
#include <tr0n/detail/archive.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/detail/files.hpp>
#include <tr0n/sampling/result.hpp>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/serialize.h>
#include <torch/types.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace tr0n {

/// The bytes of a file.
inline std::vector<char> read_bytes(const std::string& path) {
  const auto bytes = detail::file_bytes(path);
  return {bytes.begin(), bytes.end()};
}

namespace detail {
/// What the pickle in a `torch.save` zip archive holds at its top level, from
/// its first opcode after the protocol header: "a dict", "a list", "a tuple",
/// or empty when unknown (or not such an archive).
inline std::string pickled_kind(const std::vector<char>& bytes) {
  try {
    std::istringstream in(std::string(bytes.data(), bytes.size()));
    caffe2::serialize::PyTorchStreamReader reader(&in);
    if (!reader.hasRecord("data.pkl")) return {};
    auto [data, size] = reader.getRecord("data.pkl");
    const auto* p = static_cast<const unsigned char*>(data.get());
    size_t i = 0;
    if (size >= 2 && p[0] == 0x80) i = 2;  // PROTO n
    if (i >= size) return {};
    switch (p[i]) {
      case '}': return "a dict";
      case ']': return "a list";
      case '(': case ')': case 0x85: case 0x86: case 0x87: return "a tuple";
      default: return {};
    }
  } catch (const std::exception&) {
    return {};
  }
}
}  // namespace detail

/// The tensor in the bytes of a `torch.save(t, path)` file; `path` names it in
/// errors. Anything else (empty, truncated, random, a container) is one
/// `std::invalid_argument` saying what it is.
inline torch::Tensor parse_tensor_file(const std::vector<char>& bytes, const std::string& path) {
  if (bytes.empty()) detail::fail(path, ": empty file, expected a tensor written by torch.save");
  detail::check_archive(std::string_view(bytes.data(), bytes.size()), path);
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    // Python's torch.save of a container is a valid file that LibTorch's
    // unpickler cannot always read: say what it holds, not that it is foreign.
    if (const auto kind = detail::pickled_kind(bytes); !kind.empty())
      detail::fail(path, ": holds ", kind, ", expected one tensor (save it with torch.save(tensor, path))");
    detail::fail(path, ": not a tensor file written by torch.save: ", detail::brief(e));
  }
  if (!value.isTensor()) {
    const auto kind = value.isGenericDict() ? std::string("a dict")
                      : value.isList()      ? std::string("a list")
                      : value.isTuple()     ? std::string("a tuple")
                                            : std::string(value.tagKind());
    detail::fail(path, ": holds ", kind, ", expected one tensor (save it with torch.save(tensor, path))");
  }
  return value.toTensor();
}

/// The tensor stored in a file written by `torch.save(t, path)` (or `write_tensor_file`).
inline torch::Tensor read_tensor_file(const std::string& path) { return parse_tensor_file(read_bytes(path), path); }

/// Writes `bytes` to `path` atomically (see `write_file_atomically`).
inline void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  write_file_atomically(path, bytes);
}

/// Writes `value` as `torch.save` (and `torch::pickle_save`) do, a zip of its
/// pickle and each tensor's storage, straight to `path` (atomically): the
/// storages go from memory to the file, never copied into one buffer first.
inline void write_pickled(const std::string& path, const c10::IValue& value) {
  write_file_streamed(path, [&](const detail::byte_sink& sink) {
    std::vector<char> pickle;  // the structure only: the tensors are referenced by index
    // Plain containers, without TorchScript's type tags: a tagged dict names the global
    // torch.jit._pickle.restore_type_tag, which torch.load(weights_only=True) refuses
    // (the default since PyTorch 2.6). Untagged, the file is data only.
    torch::jit::Pickler pickler([&](const char* p, size_t n) { pickle.insert(pickle.end(), p, p + n); },
                                /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                                /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
    pickler.protocol();
    pickler.pushIValue(value);
    pickler.stop();
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* p, size_t n) -> size_t {
      sink(static_cast<const char*>(p), n);
      return n;
    });
    const auto& tensors = pickler.tensorData();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto storage = torch::jit::getWriteableTensorData(tensors[i], /*to_cpu=*/true);
      writer.writeRecord("data/" + std::to_string(i), storage.data(), storage.sizeInBytes());
    }
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeEndOfFile();
  });
}

inline void write_tensor_file(const std::string& path, const torch::Tensor& t) { write_pickled(path, t); }

/// Conditions from a file: float `[N, C]` as they are, or int64 labels `[N]`.
inline torch::Tensor read_conditions(const std::string& path) {
  auto c = read_tensor_file(path);
  if (c.is_floating_point() && c.dim() == 2) return c;
  if (c.scalar_type() == torch::kLong && c.dim() == 1) return c;
  detail::fail(path, ": conditions: expected a float tensor [N, C] or an int64 tensor [N] of class labels, got ",
               c.scalar_type(), " of shape ", detail::shape_of(c));
}

/// Writes `{"z", "x", "energy", "ok"}` (and `"conditions"`, when defined) as a dict of CPU tensors.
inline void write_samples(const std::string& path, const sample_result& r, const torch::Tensor& conditions = {}) {
  c10::Dict<std::string, torch::Tensor> dict;
  if (conditions.defined()) dict.insert("conditions", conditions.detach().cpu());
  dict.insert("z", r.z.cpu());
  dict.insert("x", r.x.cpu());
  dict.insert("energy", r.energy.cpu());
  dict.insert("ok", r.ok.cpu());
  write_pickled(path, dict);
}

}  // namespace tr0n
