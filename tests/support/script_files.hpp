#pragma once
// Small TorchScript models saved to a scratch folder, and the `tr0n` tool run
// on them: shared by the adapter, io, text and tools tests.
#include <tr0n.hpp>
#include <tr0n/adapters/torchscript.hpp>
#include <tr0n/io/tensor_file.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#ifndef TR0N_CLI_PATH
#define TR0N_CLI_PATH "false"
#endif

namespace tr0n_test {

namespace fs = std::filesystem;

inline constexpr int64_t latent = 6, feature_dim = 12;

inline fs::path scratch() {
  static const fs::path dir = [] {
    // One folder per process: CTest may run the discovered cases in parallel.
    auto d = fs::temp_directory_path() / ("tr0n_torchscript_test_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

/// Saves a one-parameter TorchScript module whose forward is `body`.
inline std::string save_module(const std::string& name, const torch::Tensor& w, const std::string& body) {
  torch::jit::Module m(name);
  m.register_parameter("w", w, /*is_buffer=*/false);
  m.define("def forward(self, x):\n    " + body + "\n");
  auto path = (scratch() / (name + ".pt")).string();
  m.save(path);
  return path;
}

/// z [B, 6] -> images [B, 3, 4, 4] in (0, 1); images -> features [B, 12].
struct toy_files {
  std::string generator, encoder;
  toy_files() {
    torch::manual_seed(10);
    generator = save_module("generator", torch::randn({latent, 48}),
                            "return torch.sigmoid(torch.matmul(x, self.w)).view([-1, 3, 4, 4])");
    encoder = save_module("encoder", torch::randn({48, feature_dim}) * 0.5, "return torch.matmul(x.flatten(1), self.w)");
  }
};

inline const toy_files& files() {
  static toy_files f;
  return f;
}

struct identity_encoder_for_faults {
  using tr0n_tag = tr0n::encoder_tag;
  torch::Tensor forward(const torch::Tensor& x) { return x; }
  int64_t condition_dim() const { return 2; }
};

inline int run_tool(const std::string& args) {
  const std::string cmd = "timeout 120 " + std::string(TR0N_CLI_PATH) + " " + args + " >" + (scratch() / "tool.out").string() +
                          " 2>" + (scratch() / "tool.err").string();
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string tool_stdout() {
  std::ifstream in(scratch() / "tool.out");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline std::string tool_stderr() {
  std::ifstream in(scratch() / "tool.err");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A generator with two latent inputs, as BigGAN's `forward(z, y)`: z [B, 4]
/// and y [B, 2] -> images [B, 3, 4, 4] in (0, 1); and a class table [5, 2]
/// for y, saved as a tensor file.
struct two_input_files {
  std::string generator, table;
  two_input_files() {
    torch::manual_seed(12);
    torch::jit::Module m("two_inputs");
    m.register_parameter("w", torch::randn({6, 48}), false);
    m.define("def forward(self, z, y):\n    return torch.sigmoid(torch.matmul(torch.cat([z, y], 1), self.w)).view([-1, 3, 4, 4])\n");
    generator = (scratch() / "two_inputs.pt").string();
    m.save(generator);
    table = (scratch() / "classes.pt").string();
    tr0n::write_tensor_file(table, torch::randn({5, 2}));
  }
};

inline const two_input_files& two_inputs() {
  static two_input_files f;
  return f;
}

/// A text tower that carries its tokenisation: mean of word vectors, as attributes say.
inline std::string save_text_tower(const std::string& name, bool with_vocabulary) {
  torch::manual_seed(5);
  torch::jit::Module m(name);
  m.register_parameter("w", torch::randn({5, feature_dim}), false);
  if (with_vocabulary) {
    m.register_attribute("vocabulary", c10::ListType::ofStrings(),
                         c10::List<std::string>({"<pad>", "a", "dark", "sandal", "bag"}));
    m.register_attribute("context_length", c10::IntType::get(), int64_t{3});
  }
  m.define("def forward(self, x):\n    return self.w[x].sum(1)\n");
  const auto path = (scratch() / (name + ".pt")).string();
  m.save(path);
  return path;
}

/// An encoder of the toy images [B, 3, 4, 4] that calls nn.MultiheadAttention's
/// inference fast path, as `torch.jit.trace` records it from a module traced
/// without grad: its op has no derivative.
inline std::string save_fast_path_attention(const std::string& name) {
  torch::manual_seed(6);
  torch::jit::Module m(name);
  m.register_parameter("qkv_w", torch::randn({48, 16}) * 0.1, false);
  m.register_parameter("qkv_b", torch::zeros({48}), false);
  m.register_parameter("proj_w", torch::randn({16, 16}) * 0.1, false);
  m.register_parameter("proj_b", torch::zeros({16}), false);
  m.define(R"(
def forward(self, x):
    h = x.reshape([x.size(0), 3, 16])
    out = torch._native_multi_head_attention(h, h, h, 16, 2, self.qkv_w, self.qkv_b, self.proj_w, self.proj_b, None, False)
    return out[0].mean(1)
)");
  const auto path = (scratch() / (name + ".pt")).string();
  m.save(path);
  return path;
}

}  // namespace tr0n_test
