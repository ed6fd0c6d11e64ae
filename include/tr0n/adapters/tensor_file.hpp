#pragma once
/// \file
/// Tensor files shared with Python: what `torch.save` writes, `read_tensor_file`
/// reads, and what `write_samples` writes, `torch.load` reads
/// (`torch::pickle_load` / `torch::pickle_save`).
///  - Conditions: a float tensor `[N, C]`, or an int64 tensor `[N]` of class labels.
///  - Samples: a dict `{"z": [M, d], "x": G(z), "energy": [M], "ok": bool [M]}`,
///    plus `"conditions": [N, C]` (the conditions as the sampler received them,
///    after any image or label conversion) when given.
#include <tr0n/adapters/atomic_file.hpp>
#include <tr0n/detail/check.hpp>
#include <tr0n/sampling/sampler.hpp>

#include <torch/serialize.h>
#include <torch/types.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tr0n {

/// The bytes of a file.
inline std::vector<char> read_bytes(const std::string& path) {
  if (!std::filesystem::exists(path)) detail::fail(path, ": file not found");
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The tensor stored in a file written by `torch.save(t, path)` (or `write_tensor_file`).
inline torch::Tensor read_tensor_file(const std::string& path) {
  const auto bytes = read_bytes(path);
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    detail::fail(path, ": not a tensor file written by torch.save: ", detail::brief(e));
  }
  if (!value.isTensor()) detail::fail(path, ": expected one tensor, got ", value.tagKind());
  return value.toTensor();
}

/// Writes `bytes` to `path` atomically (see `write_file_atomically`).
inline void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  write_file_atomically(path, bytes);
}

inline void write_tensor_file(const std::string& path, const torch::Tensor& t) {
  write_bytes(path, torch::pickle_save(t));
}

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
  write_bytes(path, torch::pickle_save(dict));
}

}  // namespace tr0n
