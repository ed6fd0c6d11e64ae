// TorchScript adapters, tensor files and the `tr0n` tool, on small TorchScript
// modules defined here and saved to a scratch folder.
#include <tr0n.hpp>
#include <tr0n/adapters/torchscript.hpp>

#include <fashion/idx.hpp>

#include <catch2/catch.hpp>
#include <torch/cuda.h>
#include <torch/nn/functional/normalization.h>

#include <stb_image_write.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef TR0N_TEST_SERVE
#include <httplib.h>
#include <nlohmann/json.hpp>
#endif

#include <chrono>
#include <thread>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace tr0n;

namespace {
constexpr int64_t latent = 6, feature_dim = 12;

fs::path scratch() {
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
std::string save_module(const std::string& name, const torch::Tensor& w, const std::string& body) {
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
const toy_files& files() {
  static toy_files f;
  return f;
}

struct identity_encoder_for_faults {
  using tr0n_tag = encoder_tag;
  torch::Tensor forward(const torch::Tensor& x) { return x; }
  int64_t condition_dim() const { return 2; }
};

int run_tool(const std::string& args) {
  const std::string cmd = "timeout 120 " + std::string(TR0N_CLI_PATH) + " " + args + " >" + (scratch() / "tool.out").string() +
                          " 2>" + (scratch() / "tool.err").string();
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
std::string tool_stderr() {
  std::ifstream in(scratch() / "tool.err");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("TorchScript adapters give exactly what direct calls give", "[adapters][torchscript]") {
  torchscript_generator g(files().generator, standard_normal(latent));
  torchscript_encoder f(files().encoder, g.example_output());
  STATIC_REQUIRE(Generator<torchscript_generator<standard_normal>>);
  STATIC_REQUIRE(Encoder<torchscript_encoder>);
  CHECK(f.condition_dim() == feature_dim);
  CHECK(g.example_output().sizes() == torch::IntArrayRef{2, 3, 4, 4});

  auto direct_g = torch::jit::load(files().generator);
  auto direct_f = torch::jit::load(files().encoder);
  auto z = torch::randn({5, latent});
  auto x = g.forward(z);
  CHECK(torch::equal(x, direct_g.forward({z}).toTensor()));
  CHECK(torch::equal(f.forward(x), direct_f.forward({x}).toTensor()));
  // Gradients reach the latents through both.
  auto zr = z.clone().requires_grad_(true);
  auto grad = torch::autograd::grad({f.forward(g.forward(zr)).sum()}, {zr})[0];
  CHECK(grad.abs().sum().item<double>() > 0);
}

TEST_CASE("at bf16 the TorchScript adapters run a copy with bfloat16 matrices and give autocast's results bit for bit",
          "[adapters][torchscript][precision]") {
  torchscript_generator g(files().generator, standard_normal(latent));
  torchscript_encoder f(files().encoder, g.example_output());
  STATIC_REQUIRE(tr0n::detail::takes_precision<decltype(g)>);
  STATIC_REQUIRE(tr0n::detail::takes_precision<torchscript_encoder>);
  auto direct_g = torch::jit::load(files().generator), direct_f = torch::jit::load(files().encoder);
  const auto z = torch::randn({5, latent}).requires_grad_(true);
  // Through the adapters: their lowered copies; directly: autocast casting float32 matrices at each call.
  // Same ops on the same shapes with the same bfloat16 values, so equal bit for bit.
  const auto via = tr0n::detail::forward_in(precision::bf16, f, tr0n::detail::forward_in(precision::bf16, g, z));
  const auto autocast = [](torch::jit::Module& m, const torch::Tensor& in) {
    tr0n::detail::precision_scope scope(precision::bf16, torch::kCPU);
    return m.forward({in}).toTensor().to(torch::kFloat32);
  };
  const auto direct = autocast(direct_f, autocast(direct_g, z));
  CHECK(via.scalar_type() == torch::kFloat32);
  CHECK(torch::equal(via, direct));
  CHECK(torch::equal(torch::autograd::grad({via.sum()}, {z})[0], torch::autograd::grad({direct.sum()}, {z})[0]));
  // The copy is bfloat16 and made once; the adapter's own module stays float32 for fp32 runs.
  CHECK(g.module().attr("w").toTensor().scalar_type() == torch::kFloat32);
  const auto before = tr0n::detail::forward_in(precision::fp32, g, z.detach());
  CHECK(torch::equal(before, direct_g.forward({z.detach()}).toTensor()));
  CHECK_FALSE(torch::equal(before, via.detach()));  // the encoder ran on bfloat16-rounded images
  // A model whose lowered copy fails under autocast (torch.mv, which autocast leaves alone, refuses a
  // bfloat16 matrix with a float32 vector) is run as it is, under autocast, instead.
  const auto mixed = save_module("mixed", torch::randn({latent, 48}),
                                 "return torch.sigmoid(torch.mv(self.w.t(), x[0]).expand([x.size(0), 48])).reshape([-1, 3, 4, 4])");
  torchscript_generator m(mixed, standard_normal(latent));
  auto direct_m = torch::jit::load(mixed);
  CHECK(torch::equal(tr0n::detail::forward_in(precision::bf16, m, z.detach()), autocast(direct_m, z.detach())));
}

TEST_CASE("TorchScript load failures name the file and the problem", "[adapters][torchscript][errors]") {
  const auto missing = (scratch() / "missing.pt").string();
  CHECK_THROWS_WITH(torchscript_generator(missing, standard_normal(latent)),
                    Catch::Contains("missing.pt") && Catch::Contains("not found"));
  const auto junk = (scratch() / "junk.pt").string();
  std::ofstream(junk) << "not a model";
  CHECK_THROWS_WITH(torchscript_generator(junk, standard_normal(latent)),
                    Catch::Contains("junk.pt") && Catch::Contains("not a TorchScript file"));
  auto w = torch::randn({latent, 48});
  CHECK_THROWS_WITH(torchscript_generator(save_module("drops_batch", w, "return torch.matmul(x, self.w)[0:1]"),
                                          standard_normal(latent)),
                    Catch::Contains("drops_batch.pt") && Catch::Contains("batch size"));
  CHECK_THROWS_WITH(torchscript_generator(save_module("doubles", w, "return torch.matmul(x, self.w).double()"),
                                          standard_normal(latent)),
                    Catch::Contains("doubles.pt") && Catch::Contains("dtype"));
  CHECK_THROWS_WITH(torchscript_generator(save_module("detached", w, "return torch.matmul(x.detach(), self.w)"),
                                          standard_normal(latent)),
                    Catch::Contains("detached.pt") && Catch::Contains("not differentiable"));
  CHECK_THROWS_WITH(torchscript_generator(save_module("pair", w, "return (x, x)"), standard_normal(latent)),
                    Catch::Contains("pair.pt") && Catch::Contains("one tensor"));
  CHECK_THROWS_WITH(torchscript_generator(save_module("wrong_width", torch::randn({latent + 1, 4}),
                                                      "return torch.matmul(x, self.w)"),
                                          standard_normal(latent)),
                    Catch::Contains("wrong_width.pt") && Catch::Contains("probe batch"));
  torchscript_generator g(files().generator, standard_normal(latent));
  CHECK_THROWS_WITH(torchscript_encoder(save_module("not_features", torch::randn({1}), "return x * self.w"),
                                        g.example_output()),
                    Catch::Contains("not_features.pt") && Catch::Contains("[B, C]"));
}

TEST_CASE("a translator and the augmented cosine energy drive TorchScript models to a CLIP-style target",
          "[adapters][torchscript][energy]") {
  torchscript_generator g(files().generator, standard_normal(latent));
  torchscript_encoder f(files().encoder, g.example_output());
  mixture_translator q(mixture_translator_options(feature_dim, latent).components(4).transform(condition_transform::l2));
  train_translator(q, g, f, translator_training_options().steps(1500).batch_size(256).lr(1e-2).seed(1));

  // Targets: embeddings of images of held-out latents.
  torch::manual_seed(2);
  torch::Tensor targets;
  {
    torch::NoGradGuard no_grad;
    targets = features_to_conditions(condition_transform::l2, f.forward(g.forward(torch::randn({8, latent}))));
  }
  // Mild augmentations, per image and clamped (legacy): on 4x4 images the official
  // per-call resize rounds to whole pixels, a quarter of the image.
  const augmented_neg_cosine<> energy{
      .copies = 4,
      .augment = diff_augment(
          augment_options::legacy().brightness(0.1).saturation(0.1).contrast(0.1).translation(0.1).cutout(0.25).resize(0.1))};
  auto opts = sampler_options().steps(100).seed(3).record_trace(true);
  sampler from_translator(g, f, energy, q, opts, init::translator_sample{}, constant_step{0.2}, fixed_noise{0.005});
  sampler from_prior(g, f, energy, q, opts, init::prior{}, constant_step{0.2}, fixed_noise{0.005});
  auto rt = from_translator.sample(targets, 4);
  auto rp = from_prior.sample(targets, 4);
  REQUIRE(rt.ok.all().item<bool>());
  const double start = rt.trace[0].mean().item<double>(), end = rt.energy.mean().item<double>();
  const double prior_end = rp.energy.mean().item<double>();
  INFO("translator start: " << start << " -> " << end << "; prior start ends at " << prior_end);
  // Energies are negative cosines in [-1, 1]; the margins are in cosine units.
  // The translator already starts near the target (cosine ~0.89), and random
  // cutouts cap what any image can reach, so the refinement gain is small but
  // must be real (0.015); the prior start must end clearly behind (0.05).
  CHECK(end < start - 0.015);
  CHECK(end < prior_end - 0.05);
}

TEST_CASE("a TorchScript text encoder turns token ids into conditions", "[adapters][torchscript]") {
  torch::manual_seed(4);
  const auto path = save_module("text", torch::randn({50, feature_dim}), "return self.w[x].mean(1)");
  torchscript_text_encoder text(path, /*context_length=*/7);
  CHECK(text.condition_dim() == feature_dim);
  auto tokens = torch::randint(0, 50, {3, 7}, torch::kLong);
  auto c = text.encode(tokens);
  CHECK(c.sizes() == torch::IntArrayRef{3, feature_dim});
  CHECK(torch::allclose(c[1], torch::jit::load(path).attr("w").toTensor().index({tokens[1]}).mean(0)));
  CHECK_THROWS_WITH(text.encode(tokens.to(torch::kFloat32)), Catch::Contains("int64"));
  CHECK_THROWS_WITH(text.encode(torch::full({1, 7}, 99, torch::kLong)), Catch::Contains("text.pt"));
}

TEST_CASE("tensor files round-trip conditions and samples", "[adapters][files]") {
  const auto path = (scratch() / "conditions.pt").string();
  auto c = torch::randn({3, 5});
  write_tensor_file(path, c);
  CHECK(torch::equal(read_conditions(path), c));
  write_tensor_file(path, torch::tensor({1, 0, 2}, torch::kLong));
  CHECK(read_conditions(path).scalar_type() == torch::kLong);
  write_tensor_file(path, torch::zeros({2, 2, 2}));
  CHECK_THROWS_WITH(read_conditions(path), Catch::Contains("conditions.pt") && Catch::Contains("[N, C]"));
  CHECK_THROWS_WITH(read_conditions((scratch() / "nope.pt").string()), Catch::Contains("not found"));
  // A file holding a dict is a torch.save file, just not one tensor: say so.
  const auto samples = (scratch() / "dict.pt").string();
  sample_result r;
  r.z = r.x = torch::zeros({1, 2});
  r.energy = torch::zeros({1});
  r.ok = torch::ones({1}, torch::kBool);
  write_samples(samples, r);
  CHECK_THROWS_WITH(read_conditions(samples), Catch::Contains("dict.pt: holds a dict, expected one tensor"));
}

TEST_CASE("files are streamed to disk as torch.save writes them; a failed producer leaves the old file", "[adapters][files]") {
  const auto dir = scratch() / "streamed";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // Samples: a view of a larger storage, an int tensor, bools; read back whole.
  torch::manual_seed(1);
  const auto big = torch::randn({40, 300});
  sample_result r;
  r.z = big.narrow(0, 5, 10);
  r.x = torch::randn({10, 1, 28, 28});
  r.energy = torch::randn({10}, torch::kFloat64);
  r.ok = torch::rand({10}) > 0.5;
  const auto conditions = torch::arange(10, torch::kLong);
  const auto path = (dir / "samples.pt").string();
  write_samples(path, r, conditions);
  const auto bytes = read_bytes(path);
  auto back = torch::pickle_load(bytes).toGenericDict();
  CHECK(torch::equal(back.at("z").toTensor(), r.z));
  CHECK(torch::equal(back.at("x").toTensor(), r.x));
  CHECK(torch::equal(back.at("energy").toTensor(), r.energy));
  CHECK(torch::equal(back.at("ok").toTensor(), r.ok));
  CHECK(torch::equal(back.at("conditions").toTensor(), conditions));
  // A stream of small and large writes arrives whole and in order.
  std::string expected;
  write_file_atomically((dir / "parts.bin").string(), [&](std::ostream& out) {
    for (int i = 0; i < 300; ++i) {
      const std::string part(i % 7 == 0 ? 100000 : 37, static_cast<char>('a' + i % 26));
      out << part;
      expected += part;
    }
  });
  const auto parts = read_bytes((dir / "parts.bin").string());
  CHECK(std::string(parts.begin(), parts.end()) == expected);
  // A producer that fails leaves the old file as it was, and no temporary file.
  CHECK_THROWS_WITH(write_file_streamed(path, [](const tr0n::detail::byte_sink& sink) {
                      sink("partial", 7);
                      throw std::runtime_error("producer failed");
                    }),
                    "producer failed");
  CHECK(read_bytes(path) == bytes);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  CHECK(entries == 2);
}

TEST_CASE("the tr0n tool: a --device this build cannot use is one clear line", "[tool][faults]") {
  const std::string sample = "sample --generator " + files().generator + " --encoder " + files().encoder +
                             " --latent-dim 6 --labels 1 --energy cross_entropy --out " +
                             (scratch() / "device.pt").string() + " --device ";
  CHECK(run_tool(sample + "gpu") == 2);
  CHECK(tool_stderr() == "tr0n: --device gpu: not a device (cpu, cuda, cuda:1, ...)\n");
  CHECK(run_tool(sample + "mps") == 2);
  CHECK(tool_stderr().find("--device mps: only cpu and cuda") != std::string::npos);
  if (!torch::cuda::is_available()) {
    CHECK(run_tool(sample + "cuda:0") == 2);
    CHECK(tool_stderr() == "tr0n: --device cuda:0: this LibTorch build has no CUDA support, or no GPU is visible\n");
  }
}

TEST_CASE("the tr0n tool trains, samples, and rejects bad input with status 2", "[tool]") {
  const auto dir = scratch();
  const auto translator = (dir / "translator.pt").string(), samples = (dir / "samples.pt").string();
  const auto conditions = (dir / "cli_conditions.pt").string();
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform l2 --mixtures 3 --steps 200 --seed 1 --out " +
                   translator) == 0);
  CHECK(tool_stderr().find("NLL") != std::string::npos);
  CHECK(tool_stderr().find("std") != std::string::npos);
  {
    torchscript_generator g(files().generator, standard_normal(latent));
    torchscript_encoder f(files().encoder, g.example_output());
    torch::NoGradGuard no_grad;
    write_tensor_file(conditions, f.forward(g.forward(torch::randn({2, latent}))));
  }
  for (const std::string init : {"prior", "translator_sample", "translator_mixture", "best_of:3"}) {
    INFO(init);
    REQUIRE(run_tool("sample" + models + " --translator " + translator + " --conditions " + conditions +
                     " --energy neg_cosine --augment 2 --init " + init +
                     " --steps 5 --step-size 0.01 --samples-per-condition 3 --seed 4 --out " + samples) == 0);
    auto dict = torch::pickle_load(read_bytes(samples)).toGenericDict();
    CHECK(dict.at("z").toTensor().sizes() == torch::IntArrayRef{6, latent});
    CHECK(dict.at("x").toTensor().sizes() == torch::IntArrayRef{6, 3, 4, 4});
    CHECK(dict.at("energy").toTensor().sizes() == torch::IntArrayRef{6});
    CHECK(dict.at("ok").toTensor().scalar_type() == torch::kBool);
  }
  const std::string sample_ok = "sample" + models + " --translator " + translator + " --energy neg_cosine --init prior --steps 2 --out " + samples;
  CHECK(run_tool("--help") == 0);
  CHECK(run_tool("sample --help") == 0);
  CHECK(run_tool(sample_ok + " --conditions " + conditions + " --bogus-flag") == 2);
  CHECK(run_tool(sample_ok + " --conditions " + (dir / "absent.pt").string()) == 2);
  CHECK(tool_stderr().find("absent.pt: file not found") != std::string::npos);
  write_tensor_file((dir / "narrow.pt").string(), torch::randn({2, feature_dim - 1}));
  CHECK(run_tool(sample_ok + " --conditions " + (dir / "narrow.pt").string()) == 2);
  CHECK(tool_stderr().find("width 12") != std::string::npos);
  CHECK(run_tool(sample_ok + " --conditions " + conditions + " --init best_of:zero") == 2);
  // Float conditions for cross_entropy that are not distributions: status 2, one line naming the row.
  write_tensor_file((dir / "scores.pt").string(), torch::full({2, feature_dim}, 0.5));
  CHECK(run_tool("sample" + models + " --latent-dim 6 --energy cross_entropy --steps 2 --conditions " +
                 (dir / "scores.pt").string() + " --out " + samples) == 2);
  CHECK(tool_stderr().find("row 0 has its lowest entry 0.5 and sums to 6") != std::string::npos);
  CHECK(run_tool("train --generator " + (dir / "absent.pt").string() + " --encoder " + files().encoder +
                 " --latent-dim 6 --condition-transform l2 --out " + translator) == 2);
  CHECK(tool_stderr().find("absent.pt: file not found") != std::string::npos);
  CHECK(run_tool("train" + models + " --latent-dim 7 --condition-transform l2 --out " + translator) == 2);
  // Image semantic conditioning: conditions from two reference images and the slerp path between them.
  const auto a_png = (dir / "a.png").string(), b_png = (dir / "b.png").string();
  std::vector<unsigned char> pixels(6 * 6 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>((i * 37) % 256);
  REQUIRE(stbi_write_png(a_png.c_str(), 6, 6, 3, pixels.data(), 6 * 3) != 0);
  for (auto& p : pixels) p = static_cast<unsigned char>(255 - p);
  REQUIRE(stbi_write_png(b_png.c_str(), 6, 6, 3, pixels.data(), 6 * 3) != 0);
  REQUIRE(run_tool("sample" + models + " --translator " + translator + " --condition-image " + a_png +
                   " --condition-image " + b_png + " --interpolate 4 --energy neg_cosine --init translator_sample" +
                   " --steps 3 --samples-per-condition 2 --seed 1 --out " + samples) == 0);
  CHECK(torch::pickle_load(read_bytes(samples)).toGenericDict().at("z").toTensor().size(0) == 8);
  CHECK(run_tool(sample_ok + " --condition-image " + (dir / "absent.png").string()) == 2);
  CHECK(tool_stderr().find("absent.png") != std::string::npos);

  // One clear line, no backtrace.
  const auto last = tool_stderr();
  CHECK(std::count(last.begin(), last.end(), '\n') == 1);
}

TEST_CASE("the tr0n tool: the translator's condition stage on every path, and defaults that need no extra flags",
          "[tool][conditions][defaults]") {
  const auto dir = scratch();
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const auto softmax_q = (dir / "softmax_q.pt").string(), l2_q = (dir / "l2_q.pt").string();
  const auto out = (dir / "stage_samples.pt").string();
  CHECK(run_tool("train" + models + " --latent-dim 6 --out " + softmax_q) == 2);  // the transform is required
  CHECK(tool_stderr().find("--condition-transform") != std::string::npos);
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform softmax --steps 100 --seed 1 --out " +
                   softmax_q) == 0);
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform l2 --steps 100 --seed 1 --out " + l2_q) ==
          0);
  auto conditions_of = [&] { return torch::pickle_load(read_bytes(out)).toGenericDict().at("conditions").toTensor(); };

  // An image through a softmax translator: class probabilities, not raw logits.
  const auto png = (dir / "stage.png").string();
  std::vector<unsigned char> pixels(5 * 5 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>((i * 53) % 256);
  REQUIRE(stbi_write_png(png.c_str(), 5, 5, 3, pixels.data(), 5 * 3) != 0);
  REQUIRE(run_tool("sample" + models + " --translator " + softmax_q + " --condition-image " + png +
                   " --energy cross_entropy --steps 0 --out " + out) == 0);
  auto c = conditions_of();
  CHECK(torch::allclose(c.sum(1), torch::ones({1})));
  CHECK((c >= 0).all().item<bool>());
  // Through an l2 translator: a unit vector.
  REQUIRE(run_tool("sample" + models + " --translator " + l2_q + " --condition-image " + png +
                   " --energy neg_cosine --steps 0 --out " + out) == 0);
  CHECK(conditions_of().norm().item<double>() == Approx(1.0));

  // Labels, with defaults for the start, the steps, the step and the noise.
  REQUIRE(run_tool("sample" + models + " --translator " + softmax_q + " --labels 0,3 --samples-per-condition 2" +
                   " --energy cross_entropy --seed 2 --out " + out) == 0);
  CHECK(torch::equal(conditions_of(), one_hot_conditions(torch::tensor({0, 3}), feature_dim)));
  CHECK(tool_stderr().find("init translator_sample, 10 steps") != std::string::npos);
  CHECK((tool_stderr().find("OpenBLAS") != std::string::npos || tool_stderr().find("intra-op") != std::string::npos));
  CHECK(run_tool("sample" + models + " --translator " + l2_q + " --labels 0,3 --energy cross_entropy --out " + out) == 2);
  CHECK(tool_stderr().find("unit embeddings") != std::string::npos);
  CHECK(run_tool("sample" + models + " --translator " + l2_q + " --labels 1 --condition-transform softmax" +
                 " --energy cross_entropy --out " + out) == 2);
  CHECK(tool_stderr().find("trained with l2") != std::string::npos);

  // The prior start needs no translator, only the latent width.
  REQUIRE(run_tool("sample" + models + " --latent-dim 6 --init prior --labels 2" +
                   " --energy cross_entropy --steps 3 --threads 1 --out " + out) == 0);
  CHECK(tool_stderr().find("threads: 1") != std::string::npos);
  CHECK(run_tool("sample" + models + " --init prior --labels 2 --energy cross_entropy --out " + out) == 2);
  CHECK(tool_stderr().find("--latent-dim") != std::string::npos);
  CHECK(run_tool("sample" + models + " --latent-dim 6 --labels 2 --init translator_mode --energy cross_entropy --out " +
                 out) == 2);
  CHECK(tool_stderr().find("needs --translator") != std::string::npos);
}

TEST_CASE("word_tokenizer: the documented rule, padding, and errors that name the problem", "[adapters][text]") {
  CHECK(word_tokenizer::words("A Photo of an ANKLE-boot, it's 2x!") ==
        std::vector<std::string>{"a", "photo", "of", "an", "ankle-boot", "it's", "2x"});
  CHECK(word_tokenizer::words("  \t,.").empty());
  const word_tokenizer tok({"<pad>", "a", "dark", "sandal", "t-shirt"}, 4);
  CHECK(tok.ids("A dark  SANDAL") == std::vector<int64_t>{1, 2, 3, 0});
  CHECK(tok.ids("t-shirt") == std::vector<int64_t>{4, 0, 0, 0});
  auto batch = tok.encode({"sandal", "a dark t-shirt"});
  CHECK(torch::equal(batch, torch::tensor({3, 0, 0, 0, 1, 2, 4, 0}, torch::kLong).view({2, 4})));
  try {
    (void)tok.ids("a dark Boot");
    FAIL("an unknown word was accepted");
  } catch (const unknown_word_error& e) {
    CHECK(e.word() == "boot");
    CHECK(std::string(e.what()).find("'boot'") != std::string::npos);
  }
  CHECK_THROWS_WITH(tok.ids(" , "), Catch::Contains("no words"));
  CHECK_THROWS_WITH(tok.ids("a dark dark dark sandal"), Catch::Contains("5 words") && Catch::Contains("at most 4"));
  CHECK_THROWS_WITH(word_tokenizer({"<pad>", "a", "a"}, 4), Catch::Contains("twice"));
  CHECK_THROWS_WITH(word_tokenizer({"<pad>", "Dark"}, 4), Catch::Contains("one lower-case word"));
  CHECK_THROWS_WITH(word_tokenizer({"<pad>", "ankle boot"}, 4), Catch::Contains("one lower-case word"));
  CHECK_THROWS_WITH(word_tokenizer({"<pad>"}, 4), Catch::Contains("at least one word"));
  // The vocabulary file round-trips.
  const auto file = (scratch() / "vocab.txt").string();
  REQUIRE(tok.write(file));
  CHECK(word_tokenizer::read(file, 4).vocabulary() == tok.vocabulary());
  CHECK_THROWS_WITH(word_tokenizer::read((scratch() / "absent.txt").string(), 4), Catch::Contains("absent.txt"));
}

namespace {
/// A text tower that carries its tokenisation: mean of word vectors, as attributes say.
std::string save_text_tower(const std::string& name, bool with_vocabulary) {
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
}  // namespace

TEST_CASE("a text tower with its own vocabulary: encode_texts, and the tool's --prompt", "[adapters][text][tool]") {
  const auto path = save_text_tower("tower", true);
  torchscript_text_encoder text(path);
  CHECK(text.context_length() == 3);
  const auto tok = text.tokenizer();
  auto e = text.encode_texts(tok, {"a dark sandal", "bag"});
  const auto w = torch::jit::load(path).attr("w").toTensor();
  CHECK(torch::allclose(e[0], w[1] + w[2] + w[3]));  // three words fill the context
  CHECK(torch::allclose(e[1], w[4] + 2 * w[0]));  // two padding slots: the tower sees id 0 twice
  CHECK_THROWS_AS(text.encode_texts(tok, {"a red sandal"}), unknown_word_error);
  CHECK_THROWS_WITH(text.encode_texts(word_tokenizer({"<pad>", "a"}, 5), {"a"}), Catch::Contains("context length"));
  const auto bare = save_text_tower("bare_tower", false);
  CHECK_THROWS_WITH(torchscript_text_encoder(bare), Catch::Contains("context_length"));
  CHECK_THROWS_WITH(torchscript_text_encoder(bare, 3).tokenizer(), Catch::Contains("vocabulary"));

  // The tool: conditions from prompts, in the translator's space (l2: unit vectors).
  const auto dir = scratch();
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const auto q = (dir / "prompt_q.pt").string(), out = (dir / "prompt_samples.pt").string();
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform l2 --steps 50 --seed 1 --out " + q) == 0);
  REQUIRE(run_tool("sample" + models + " --translator " + q + " --text-encoder " + path +
                   " --prompt 'a dark sandal' --prompt Bag --samples-per-condition 2 --energy neg_cosine --steps 2" +
                   " --seed 3 --out " + out) == 0);
  auto c = torch::pickle_load(read_bytes(out)).toGenericDict().at("conditions").toTensor();
  CHECK(torch::allclose(c, torch::nn::functional::normalize(
                               e, torch::nn::functional::NormalizeFuncOptions().dim(1)),
                        1e-5, 1e-6));
  // An unknown word: status 2 and one line that names it.
  CHECK(run_tool("sample" + models + " --translator " + q + " --text-encoder " + path +
                 " --prompt 'a dark boot' --energy neg_cosine --out " + out) == 2);
  const auto err = tool_stderr();
  CHECK(err.find("unknown word 'boot'") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  // A vocabulary file in place of the tower's own; --prompt needs a text encoder.
  const auto vocab = (dir / "prompt_vocab.txt").string();
  REQUIRE(word_tokenizer({"<pad>", "a", "dark", "sandal", "boot"}, 3).write(vocab));
  CHECK(run_tool("sample" + models + " --translator " + q + " --text-encoder " + path + " --vocabulary " + vocab +
                 " --prompt 'a dark boot' --energy neg_cosine --steps 0 --out " + out) == 0);
  CHECK(run_tool("sample" + models + " --translator " + q + " --prompt bag --energy neg_cosine --out " + out) == 2);
  CHECK(tool_stderr().find("--text-encoder") != std::string::npos);
}

#ifdef TR0N_TEST_SERVE
namespace {
/// `tr0n serve` in a child process on a free loopback port; killed (SIGKILL)
/// if still running when destroyed.
class server_process {
 public:
  explicit server_process(const std::string& args) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      const std::string cmd = "exec " + std::string(TR0N_CLI_PATH) + " serve --port 0 " + args + " 2>" +
                              (scratch() / "serve.err").string();
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    // The first line is "listening on http://127.0.0.1:PORT/"; wait for it at most 60 s.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char ch = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      if (::read(out[0], &ch, 1) != 1 || ch == '\n') break;
      line.push_back(ch);
    }
    ::close(out[0]);
    const auto colon = line.rfind(':');
    if (line.rfind("listening on http://", 0) == 0 && colon != std::string::npos) port_ = std::stoi(line.substr(colon + 1));
  }
  ~server_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  /// Sends `sig` and waits up to `seconds` for the exit; the exit status, or -1.
  int stop(int sig, int seconds) {
    ::kill(pid_, sig);
    for (int i = 0; i < seconds * 20; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  bool exited_ = false;
};

nlohmann::json body_of(const httplib::Result& r) { return nlohmann::json::parse(r->body); }
}  // namespace

TEST_CASE("tr0n serve: the page, the API, every error class, a full queue and a clean stop", "[tool][serve]") {
  const auto dir = scratch();
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const auto q = (dir / "serve_q.pt").string();
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform l2 --steps 50 --seed 1 --out " + q) == 0);
  const auto text = save_text_tower("serve_tower", true);
  server_process server(models + " --translator " + q + " --text-encoder " + text +
                        " --energy neg_cosine --queue 8 --max-n 64 --max-steps 2000 --max-body 4096 --timeout 60");
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  auto post = [&](const std::string& body) { return client.Post("/api/sample", body, "application/json"); };

  auto page = client.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type").find("text/html") != std::string::npos);
  CHECK(page->body.find("<canvas id=\"plot\"") != std::string::npos);
  CHECK(page->body.find("http") == page->body.find("http-equiv"));  // no external assets (no URLs at all)
  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);

  // A good request: shapes, and the same answer for the same seed.
  const std::string good = R"({"prompt": "a dark sandal", "n": 3, "steps": 4, "seed": 5})";
  auto a = post(good);
  REQUIRE(a);
  REQUIRE(a->status == 200);
  const auto ja = body_of(a);
  CHECK(ja["images"].size() == 3);
  CHECK(ja["images"][0].get<std::string>().rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);
  CHECK(ja["energy"].size() == 3);
  CHECK(ja["ok"].size() == 3);
  CHECK(ja["trace"].size() == 5);
  CHECK(ja["seconds"].get<double>() > 0);
  auto b = post(good);
  REQUIRE(b);
  CHECK(body_of(b)["energy"] == ja["energy"]);
  CHECK(body_of(b)["images"] == ja["images"]);
  auto c = post(R"({"prompt": "a dark sandal", "n": 3, "steps": 4, "seed": 6})");
  REQUIRE(c);
  CHECK(body_of(c)["energy"] != ja["energy"]);
  // Conditions instead of a prompt; the translator alone; the prior start.
  std::string conditions = "[";
  for (int64_t i = 0; i < feature_dim; ++i) conditions += (i ? "," : "") + std::to_string(0.1 * static_cast<double>(i));
  conditions += "]";
  auto d = post(R"({"conditions": )" + conditions + R"(, "n": 2, "init": "translator"})");
  REQUIRE(d);
  CHECK(d->status == 200);
  CHECK(body_of(d)["trace"].size() == 1);
  auto e = post(R"({"prompt": "bag", "n": 2, "steps": 3, "init": "prior"})");
  REQUIRE(e);
  CHECK(e->status == 200);

  // Errors: JSON {error} with the right status.
  auto expect = [&](const std::string& body, int status, const std::string& words) {
    INFO(body);
    auto r = post(body);
    REQUIRE(r);
    CHECK(r->status == status);
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["error"].get<std::string>().find(words) != std::string::npos);
  };
  expect("{not json", 400, "bad JSON");
  expect("[1, 2]", 400, "JSON object");
  expect(R"({"prompt": "a dark boot"})", 400, "unknown word 'boot'");
  expect(R"({"prompt": "bag", "n": 0})", 400, "n:");
  expect(R"({"prompt": "bag", "n": 65})", 400, "n:");
  expect(R"({"prompt": "bag", "n": 2.5})", 400, "n:");
  expect(R"({"prompt": "bag", "steps": 2001})", 400, "steps:");
  expect(R"({"prompt": "bag", "seed": -1})", 400, "seed:");
  expect(R"({"prompt": "bag", "init": "best"})", 400, "init:");
  expect(R"({"prompt": 7})", 400, "prompt:");
  expect(R"({"n": 2})", 400, "exactly one");
  expect(R"({"prompt": "bag", "conditions": [1]})", 400, "exactly one");
  expect(R"({"conditions": [1, 2]})", 400, "array of 12");
  expect(R"({"prompt": "a a a a"})", 400, "words");
  expect(std::string(5000, ' ') + "{}", 413, "too large");
  auto missing = client.Get("/nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(body_of(missing).contains("error"));

  // 32 concurrent slow requests against a queue of 8: each answered 200 or
  // 503 (with Retry-After), none lost; health checks answer meanwhile.
  std::vector<int> statuses(32, 0);
  std::vector<std::string> retry(32);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < statuses.size(); ++i)
    clients.emplace_back([&, i] {
      httplib::Client cl("127.0.0.1", server.port());
      cl.set_read_timeout(120, 0);
      auto r = cl.Post("/api/sample", R"({"prompt": "a dark sandal", "n": 64, "steps": 2000})", "application/json");
      if (r) {
        statuses[i] = r->status;
        retry[i] = r->get_header_value("Retry-After");
      } else {
        retry[i] = httplib::to_string(r.error());
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  httplib::Client probe("127.0.0.1", server.port());
  probe.set_read_timeout(5, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto busy_health = probe.Get("/healthz");
  const double health_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& t : clients) t.join();
  REQUIRE(busy_health);
  CHECK(busy_health->status == 200);
  CHECK(health_seconds < 2.0);
  int ok = 0, busy = 0;
  for (size_t i = 0; i < statuses.size(); ++i) {
    INFO("request " << i << " status " << statuses[i] << " " << retry[i]);
    CHECK((statuses[i] == 200 || statuses[i] == 503));
    if (statuses[i] == 200) ++ok;
    if (statuses[i] == 503) {
      ++busy;
      CHECK(retry[i] == "1");
    }
  }
  CHECK(ok >= 1);
  CHECK(busy >= 1);
  CHECK(ok <= 9 + busy);  // at most the queue, the one running, and those that came after a slot freed
  auto after = client.Get("/healthz");
  REQUIRE(after);
  CHECK(after->status == 200);

  // SIGTERM: the server stops cleanly.
  CHECK(server.stop(SIGTERM, 30) == 0);
}

TEST_CASE("tr0n serve: a request past --timeout is a 504, and the server carries on", "[tool][serve]") {
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const auto text = save_text_tower("timeout_tower", true);
  server_process server(models + " --latent-dim 6 --text-encoder " + text +
                        " --energy neg_cosine --max-steps 100000 --timeout 0.05 --workers 1");
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  auto slow = client.Post("/api/sample", R"({"prompt": "bag", "n": 64, "steps": 100000})", "application/json");
  REQUIRE(slow);
  CHECK(slow->status == 504);
  CHECK(body_of(slow)["error"].get<std::string>().find("timed out") != std::string::npos);
  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(server.stop(SIGINT, 60) == 0);  // the abandoned request finishes, then the server exits
}

TEST_CASE("tr0n serve: a port in use is a clear error", "[tool][serve]") {
  httplib::Server holder;
  const int port = holder.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  // Bounded: `timeout` ends a server that wrongly started.
  CHECK(run_tool("serve" + models + " --latent-dim 6 --energy neg_cosine --port " + std::to_string(port)) == 2);
  CHECK(tool_stderr().find("cannot listen") != std::string::npos);
}
#endif

TEST_CASE("an atomic write killed midway leaves the old file whole", "[files][faults]") {
  const auto path = (scratch() / "atomic.bin").string();
  const size_t size = size_t{16} << 20;
  // Allocated before fork: the child must not call malloc (another thread may hold its lock).
  const std::string a(size, 'A'), b(size, 'B');
  write_file_atomically(path, std::string_view(a));
  for (int round = 0; round < 6; ++round) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      for (int i = 0;; ++i) write_file_atomically(path, std::string_view(i % 2 ? a : b));  // until killed
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 23 * round));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    const auto bytes = read_bytes(path);
    INFO("round " << round);
    REQUIRE(bytes.size() == size);
    const bool all_a = std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 'A'; });
    const bool all_b = std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 'B'; });
    CHECK((all_a || all_b));
  }
  // Errors name the file and the reason; nothing is left behind.
  const auto missing = (scratch() / "absent_dir" / "x.bin").string();
  CHECK_THROWS_WITH(write_file_atomically(missing, std::string_view("x")),
                    Catch::Contains("absent_dir/x.bin") && Catch::Contains("temporary file"));
  const auto into_dir = scratch() / "a_folder";
  fs::create_directories(into_dir / "inside");
  CHECK_THROWS_WITH(write_file_atomically(into_dir.string(), std::string_view("x")),
                    Catch::Contains("cannot replace"));
  size_t left = 0;
  for (const auto& e : fs::directory_iterator(scratch()))
    if (e.path().filename().string().rfind(".a_folder.tmp-", 0) == 0) ++left;
  CHECK(left == 0);
}

TEST_CASE("the tr0n tool: training killed mid-run resumes to the translator an uninterrupted run writes",
          "[tool][checkpoint][faults]") {
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const std::string train = "train" + models +
                            " --latent-dim 6 --condition-transform l2 --mixtures 3 --steps 1500 --batch 32 --seed 2 "
                            "--checkpoint-every 50 --out ";
  const auto whole = (scratch() / "whole.pt").string(), killed = (scratch() / "killed.pt").string();
  fs::remove(killed);
  fs::remove(killed + ".ckpt");
  REQUIRE(run_tool(train + whole) == 0);
  CHECK_FALSE(fs::exists(whole + ".ckpt"));  // removed once the translator is written

  // The same run in a child, killed (SIGKILL) once its first checkpoint is on disk.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const std::string cmd = "exec " + std::string(TR0N_CLI_PATH) + " " + train + killed + " 2>/dev/null";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(killed + ".ckpt") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  REQUIRE(fs::exists(killed + ".ckpt"));
  REQUIRE_FALSE(fs::exists(killed));  // it died before the end

  REQUIRE(run_tool(train + killed + " --resume") == 0);
  CHECK(tool_stderr().find("resuming from " + killed + ".ckpt") != std::string::npos);
  auto a = load_mixture_translator(whole), b = load_mixture_translator(killed);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& item : pa) {
    INFO(item.key());
    CHECK(torch::equal(item.value(), pb[item.key()]));
  }

  // No checkpoint, or a damaged one: exit status 2 and one line.
  CHECK(run_tool(train + killed + " --resume") == 2);
  CHECK(tool_stderr().find("--resume: no checkpoint at " + killed + ".ckpt") != std::string::npos);
  write_bytes(killed + ".ckpt", std::vector<char>(100, 'x'));
  CHECK(run_tool(train + killed + " --resume") == 2);
  const auto err = tool_stderr();
  // After the run's announcement, one error line: the last.
  CHECK(err.rfind("\ntr0n: checkpoint " + killed + ".ckpt: not a whole torch.save archive") != std::string::npos);
  CHECK(err.find('\n', err.rfind("\ntr0n: checkpoint") + 1) == err.size() - 1);
}


TEST_CASE("every loader refuses empty, truncated, random and wrong-shape files in one line naming the file",
          "[files][faults]") {
  const auto dir = scratch() / "damaged";
  fs::create_directories(dir);
  // Valid files of each kind, to damage.
  torch::manual_seed(0);
  mixture_translator q(mixture_translator_options(feature_dim, latent).components(2).hidden(8));
  const auto translator = (dir / "translator.pt").string(), conditions = (dir / "conditions.pt").string();
  torch::save(q, translator);
  write_tensor_file(conditions, torch::softmax(torch::randn({2, feature_dim}), -1));
  const auto checkpoint = (dir / "run.ckpt").string();
  auto g = make_generator([](const torch::Tensor& z) { return z; }, standard_normal(2));
  identity_encoder_for_faults f;
  auto training = translator_training_options().steps(3).batch_size(4).seed(1);
  mixture_translator small(mixture_translator_options(2, 2));
  train_translator(small, g, f, translator_training_options(training).checkpoint_path(checkpoint));
  const auto idx = (dir / "labels.idx").string();
  {
    std::ofstream out(idx, std::ios::binary);
    out.write("\0\0\x08\x01\0\0\0\x03\x01\x02\x03", 11);
  }
  const auto model = files().generator;

  auto one_line_naming = [](const std::string& what, const std::string& path) {
    INFO(what);
    CHECK(what.find(path) != std::string::npos);
    CHECK(what.find('\n') == std::string::npos);
  };
  // Each loader on `path`: its error's message, or "" when it loaded.
  const std::map<std::string, std::function<std::string(const std::string&)>> loaders{
      {"translator", [](const std::string& path) -> std::string {
         try { load_mixture_translator(path); } catch (const std::invalid_argument& e) { return e.what(); }
         return "";
       }},
      {"checkpoint", [&](const std::string& path) -> std::string {
         mixture_translator fresh(mixture_translator_options(2, 2));
         try { train_translator(fresh, g, f, translator_training_options(training).resume_from(path)); }
         catch (const std::invalid_argument& e) { return e.what(); }
         return "";
       }},
      {"tensor file", [](const std::string& path) -> std::string {
         try { read_conditions(path); } catch (const std::invalid_argument& e) { return e.what(); }
         return "";
       }},
      {"IDX file", [](const std::string& path) -> std::string {
         try { fashion::read_idx(path); } catch (const fashion::idx_error& e) { return e.what(); }
         return "";
       }},
      {"TorchScript model", [](const std::string& path) -> std::string {
         try { torchscript_generator<standard_normal> gen(path, standard_normal(latent)); }
         catch (const model_load_error& e) { return e.what(); }
         return "";
       }},
      {"condition image", [&](const std::string& path) -> std::string {
         const int rc = run_tool("sample --generator " + files().generator + " --encoder " + files().encoder +
                                 " --latent-dim 6 --energy neg_cosine --condition-transform l2 --steps 1 "
                                 "--condition-image " + path + " --out " + (dir / "out.pt").string());
         const auto err = tool_stderr();
         CHECK(rc == (err.empty() ? 0 : 2));
         // The error is the last line; the run's announcement may come before it.
         const auto start = err.rfind("\ntr0n: ");
         return err.empty() ? "" : err.substr(start == std::string::npos ? 0 : start + 1, err.size() - (start == std::string::npos ? 0 : start + 1) - 1);
       }}};
  const std::map<std::string, std::string> valid{{"translator", translator},   {"checkpoint", checkpoint},
                                                 {"tensor file", conditions},  {"IDX file", idx},
                                                 {"TorchScript model", model}, {"condition image", ""}};
  std::mt19937 rng(5);
  for (const auto& [kind, load] : loaders) {
    INFO(kind);
    std::string original;
    if (kind == "condition image") {
      unsigned char pixels[4 * 4 * 3] = {};
      stbi_write_png_to_func([](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), n); },
                             &original, 4, 4, 3, pixels, 12);
    } else {
      const auto bytes = read_bytes(valid.at(kind));
      original.assign(bytes.begin(), bytes.end());
    }
    const auto base = (dir / ("damaged_" + std::to_string(std::hash<std::string>{}(kind)))).string();
    std::string randomised(original.size(), '\0');
    for (auto& ch : randomised) ch = static_cast<char>(rng());
    for (const auto& [damage, bytes] : std::vector<std::pair<std::string, std::string>>{
             {"empty", ""}, {"truncated", original.substr(0, original.size() * 2 / 3)}, {"random", randomised}}) {
      INFO(damage);
      const auto path = base + "_" + damage;
      write_bytes(path, std::vector<char>(bytes.begin(), bytes.end()));
      const auto what = load(path);
      CHECK_FALSE(what.empty());
      one_line_naming(what, path);
    }
  }

  // Wrong shapes: parsed files whose content does not fit.
  auto expect = [&](const std::string& kind, const std::string& path, const std::string& words) {
    INFO(kind);
    const auto what = loaders.at(kind)(path);
    CHECK_THAT(what, Catch::Contains(words));
    one_line_naming(what, path);
  };
  {  // a translator whose parameters do not fit the options it records
    mixture_translator wider(mixture_translator_options(feature_dim, latent).components(2).hidden(16));
    wider->options = q->options;  // records hidden 8, holds hidden-16 weights
    torch::save(wider, (dir / "mixed.pt").string());
    expect("translator", (dir / "mixed.pt").string(), "recorded options give");
  }
  write_tensor_file((dir / "cube.pt").string(), torch::zeros({2, 2, 2}));
  expect("tensor file", (dir / "cube.pt").string(), "expected a float tensor [N, C]");
  {
    mixture_translator other(mixture_translator_options(2, 2).components(3));
    INFO("checkpoint into another translator");
    try {
      train_translator(other, g, f, translator_training_options(training).resume_from(checkpoint));
      FAIL("resumed into another translator");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains("its translator does not match"));
      one_line_naming(e.what(), checkpoint);
    }
  }
  {
    std::ofstream out((dir / "huge.idx").string(), std::ios::binary);
    out.write("\0\0\x08\x02\x7f\xff\xff\xff\x7f\xff\xff\xff", 12);
  }
  expect("IDX file", (dir / "huge.idx").string(), "declares more data than a file of 12 bytes can hold");
}
