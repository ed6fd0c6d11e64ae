// The `tr0n` tool: train and sample end to end, every path's defaults, bad
// input (status 2, one line) and a killed training run resumed.
#include "support/script_files.hpp"

#include <signal.h>
#include <torch/cuda.h>

#include <stb_image_write.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace tr0n;
using namespace tr0n_test;

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

TEST_CASE("the tr0n tool: a flag group declared once appears in every subcommand that takes it", "[tool][flags]") {
  auto help = [](const std::string& command) {
    REQUIRE(run_tool(command + " --help") == 0);
    return tool_stdout();
  };
  auto has = [](const std::string& text, const std::string& flag) { return text.find(flag + " ") != std::string::npos; };
  std::vector<std::string> all{help("train"), help("sample")}, takes_sampling{all[1]};
#ifdef TR0N_TEST_SERVE
  all.push_back(help("serve"));
  takes_sampling.push_back(all[2]);
#endif
  for (const std::string flag : {"--generator", "--encoder", "--latent-dim", "--prior", "--image-shape", "--device",
                                 "--threads", "--seed", "--precision", "--dist-backend", "--dist-timeout"})
    for (const auto& text : all) CHECK(has(text, flag));
  for (const std::string flag : {"--translator", "--text-encoder", "--vocabulary", "--init", "--steps", "--energy",
                                 "--augment", "--step-size", "--noise-std", "--momentum", "--grad-clip"}) {
    INFO(flag);
    for (const auto& text : takes_sampling) CHECK(has(text, flag));
    if (flag != "--steps") CHECK_FALSE(has(all[0], flag));  // train's --steps are training steps
  }
}

TEST_CASE("the tr0n tool: one vocabulary of starts, with tr0n and translator in sample too", "[tool][flags]") {
  const auto dir = scratch();
  const auto translator = (dir / "vocabulary_translator.pt").string(), out = (dir / "vocabulary.pt").string();
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform softmax --steps 20 --seed 1 " +
                   "--feature-noise 0.2 --out " + translator) == 0);
  CHECK(tool_stderr().find("feature noise 0.2: expected cosine 0.9") != std::string::npos);
  CHECK(run_tool("train" + models + " --latent-dim 6 --condition-transform l2 --feature-noise 0.2 --noise-cosine 0.6 " +
                 "--out " + translator) == 2);
  CHECK(tool_stderr().find("--feature-noise excludes --noise-cosine") != std::string::npos);
  const std::string sample = "sample" + models + " --translator " + translator + " --labels 1,2 --seed 3 --out " + out;
  REQUIRE(run_tool(sample + " --init tr0n --steps 4") == 0);
  CHECK(tool_stderr().find("init tr0n, 4 steps") != std::string::npos);
  const auto tr0n_z = torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor();
  REQUIRE(run_tool(sample + " --init translator_sample --steps 4") == 0);  // the same start and steps, by its long name
  CHECK(torch::equal(torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor(), tr0n_z));
  REQUIRE(run_tool(sample + " --init translator --steps 4") == 0);  // the translator alone: no steps
  CHECK(tool_stderr().find("init translator, 0 steps") != std::string::npos);
  CHECK(run_tool(sample + " --init sideways") == 2);
  CHECK(tool_stderr() == "tr0n: --init: expected prior, translator_sample, translator_mode, translator_mixture, "
                         "best_of:N, tr0n or translator, got 'sideways'\n");
}

TEST_CASE("the tr0n tool: an encoder traced with the attention fast path is one line naming the file and the way out",
          "[tool][faults]") {
  const auto encoder = save_fast_path_attention("tool_fast_path");
  CHECK(run_tool("train --generator " + files().generator + " --encoder " + encoder +
                 " --latent-dim 6 --condition-transform l2 --steps 2 --out " + (scratch() / "never.pt").string()) == 2);
  const auto err = tool_stderr();
  CHECK(err.rfind("tr0n: " + encoder + ": the encoder cannot be differentiated", 0) == 0);
  CHECK(err.find("re-export it with torch.jit.trace on an example input that requires grad") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

TEST_CASE("the tr0n tool: --generator-range, --encoder-size and --encoder-normalize put G's output into f's input",
          "[tool][preprocess]") {
  torch::manual_seed(11);
  const auto generator = save_module("tanh_generator", torch::randn({latent, 48}),
                                     "return torch.tanh(torch.matmul(x, self.w)).view([-1, 3, 4, 4])");
  const auto encoder = save_module("encoder_8x8", torch::randn({192, feature_dim}) * 0.1,
                                   "return torch.matmul(x.flatten(1), self.w)");
  const auto dir = scratch();
  const auto zeros = (dir / "zero_conditions.pt").string(), out = (dir / "preprocessed.pt").string();
  write_tensor_file(zeros, torch::zeros({2, feature_dim}));
  const std::string models = " --generator " + generator + " --encoder " + encoder;
  const std::string sample = "sample" + models + " --latent-dim 6 --conditions " + zeros +
                             " --energy squared --init prior --steps 0 --seed 2 --precision fp32 --out " + out;
  // Without --encoder-size the 8 x 8 encoder cannot take G's 4 x 4 images: one line, the shapes and the flag.
  CHECK(run_tool(sample) == 2);
  CHECK(tool_stderr().find("encoder_8x8.pt: the encoder failed on a probe batch of shape [2, 3, 4, 4]") !=
        std::string::npos);
  const auto err = tool_stderr();
  CHECK(err.find("the generator's output [2, 3, 4, 4]: give --encoder-size N") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  REQUIRE(run_tool(sample + " --generator-range -1:1 --encoder-size 8 --encoder-normalize clip") == 0);
  const auto dict = torch::pickle_load(read_bytes(out)).toGenericDict();
  const auto z = dict.at("z").toTensor(), x = dict.at("x").toTensor(), energy = dict.at("energy").toTensor();
  // What the flags promise, computed here: x in [0, 1] is (G(z) + 1) / 2, and f sees it resized and normalised.
  auto g = torch::jit::load(generator), f = torch::jit::load(encoder);
  torch::NoGradGuard no_grad;
  const auto expected_x = (g.forward({z}).toTensor() + 1) / 2;
  CHECK(torch::allclose(x, expected_x, 1e-6, 1e-6));
  CHECK(x.min().item<double>() >= 0);
  const auto features = f.forward({preprocess_images(preprocess_options::clip().size(8), expected_x)}).toTensor();
  CHECK(torch::allclose(energy, features.pow(2).sum(-1), 1e-4, 1e-5));
  CHECK(run_tool(sample + " --generator-range 1:-1") == 2);
  CHECK(tool_stderr() == "tr0n: --generator-range 1:-1: expected finite LO < HI\n");
}

TEST_CASE("the tr0n tool: --score-head adds minus W times the head's score of f(G(z)) to the energy", "[tool][score]") {
  torch::manual_seed(12);
  const auto head = save_module("score_head", torch::randn({feature_dim, 1}), "return torch.matmul(x, self.w)");
  const auto dir = scratch();
  const auto conditions = (dir / "score_conditions.pt").string(), out = (dir / "scored.pt").string();
  write_tensor_file(conditions, torch::randn({2, feature_dim}));
  const std::string sample = "sample --generator " + files().generator + " --encoder " + files().encoder +
                             " --latent-dim 6 --conditions " + conditions +
                             " --energy neg_cosine --init prior --steps 0 --seed 5 --precision fp32 --out " + out;
  REQUIRE(run_tool(sample) == 0);
  const auto plain = torch::pickle_load(read_bytes(out)).toGenericDict();
  REQUIRE(run_tool(sample + " --score-head " + head + " --score-weight 0.5") == 0);
  const auto scored = torch::pickle_load(read_bytes(out)).toGenericDict();
  const auto z = scored.at("z").toTensor();
  CHECK(torch::equal(z, plain.at("z").toTensor()));  // the same chains, scored
  torch::NoGradGuard no_grad;
  const auto features = torch::jit::load(files().encoder).forward({scored.at("x").toTensor()}).toTensor();
  const auto h = torch::jit::load(head).forward({features / features.norm(2, -1, true)}).toTensor().reshape({-1});
  CHECK(torch::allclose(scored.at("energy").toTensor(), plain.at("energy").toTensor() - 0.5 * h, 1e-5, 1e-6));
  const auto bad = save_module("two_scores", torch::randn({feature_dim, 2}), "return torch.matmul(x, self.w)");
  CHECK(run_tool(sample + " --score-head " + bad) == 2);
  CHECK(tool_stderr().find("two_scores.pt: the score head must give one score a sample") != std::string::npos);
}

TEST_CASE("the tr0n tool: a generator with two latent inputs, a prior per part, a codebook and a step rate per part",
          "[tool][parts]") {
  const auto dir = scratch();
  const auto& two = two_inputs();
  const auto table = read_tensor_file(two.table);
  const auto q = (dir / "parts_q.pt").string(), out = (dir / "parts.pt").string();
  const std::string models = "--generator " + two.generator + " --encoder " + files().encoder +
                             " --latent-dim 4,2 --prior truncated:1,codebook:" + two.table;
  REQUIRE(run_tool("train " + models + " --condition-transform l2 --steps 30 --batch 32 --seed 1 --out " + q) == 0);
  const auto conditions = (dir / "parts_conditions.pt").string();
  write_tensor_file(conditions, torch::randn({2, feature_dim}));
  const std::string base = "sample " + models + " --translator " + q + " --conditions " + conditions +
                           " --samples-per-condition 8 --seed 3 --precision fp32 --out " + out;
  SECTION("prior starts: the first part in its box, the second rows of the table") {
    REQUIRE(run_tool(base + " --init prior --steps 0") == 0);
    const auto z = torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor();
    REQUIRE(z.sizes() == torch::IntArrayRef{16, 6});
    CHECK(z.narrow(1, 0, 4).abs().max().item<double>() <= 1.0);
    CHECK(z.narrow(1, 4, 2).unsqueeze(1).eq(table.unsqueeze(0)).all(-1).any(1).all().item<bool>());
  }
  SECTION("tr0n with steps: the box holds, and --step-scale moves each part at its rate") {
    REQUIRE(run_tool(base + " --init tr0n --steps 20 --step-size 0.5") == 0);
    const auto z = torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor();
    CHECK(z.narrow(1, 0, 4).abs().max().item<double>() <= 1.0);
    REQUIRE(run_tool(base + " --init tr0n --steps 0") == 0);
    const auto start = torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor();
    REQUIRE(run_tool(base + " --init tr0n --steps 1 --noise-std 0 --step-size 0.01") == 0);
    const auto plain = torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor() - start;
    REQUIRE(run_tool(base + " --init tr0n --steps 1 --noise-std 0 --step-size 0.01 --step-scale 1,0.1") == 0);
    const auto scaled = torch::pickle_load(read_bytes(out)).toGenericDict().at("z").toTensor() - start;
    CHECK(plain.narrow(1, 4, 2).abs().sum().item<double>() > 0);
    CHECK(torch::allclose(scaled.narrow(1, 4, 2), 0.1 * plain.narrow(1, 4, 2), 1e-3, 1e-6));
    CHECK(torch::allclose(scaled.narrow(1, 0, 4), plain.narrow(1, 0, 4), 1e-3, 1e-6));
  }
  SECTION("mismatches are one line") {
    CHECK(run_tool(base + " --step-scale 1,2,3") == 2);
    CHECK(tool_stderr().find("--step-scale: 3 multipliers for 2 latent parts") != std::string::npos);
    const std::string wrong = "sample --generator " + two.generator + " --encoder " + files().encoder +
                              " --conditions " + conditions + " --out " + out + " --latent-dim ";
    CHECK(run_tool(wrong + "3,3 --prior normal,codebook:" + two.table) == 2);
    CHECK(tool_stderr().find("codebook:" + two.table + ": rows of width 2 (5 rows), but the latent part is 3 wide") !=
          std::string::npos);
    CHECK(run_tool(wrong + "4,2 --prior normal,normal,normal") == 2);
    CHECK(tool_stderr().find("--prior normal,normal,normal: 3 specs for 2 latent parts") != std::string::npos);
    CHECK(run_tool(wrong + "6") == 2);  // one input for a forward(z, y)
    CHECK(tool_stderr().find("two_inputs.pt: the generator failed on a probe batch") != std::string::npos);
  }
}

TEST_CASE("the tr0n tool: --memory-budget sizes batches from a measured chain, down to one chain", "[tool][memory]") {
  const auto dir = scratch();
  const auto out = (dir / "budget.pt").string();
  const std::string sample = "sample --generator " + files().generator + " --encoder " + files().encoder +
                             " --latent-dim 6 --labels 0,1,2 --energy cross_entropy --init prior --steps 3 "
                             "--samples-per-condition 10 --seed 4 --precision fp32 --out " + out;
  REQUIRE(run_tool(sample + " --memory-budget 1") == 0);
  const auto err = tool_stderr();
  CHECK(err.find("a chain takes") != std::string::npos);
  CHECK(err.find("(measured)") != std::string::npos);
  const auto budgeted = torch::pickle_load(read_bytes(out)).toGenericDict();
  REQUIRE(run_tool(sample + " --max-batch 1") == 0);
  const auto one = torch::pickle_load(read_bytes(out)).toGenericDict();
  REQUIRE(run_tool(sample + " --max-batch 0") == 0);
  const auto whole = torch::pickle_load(read_bytes(out)).toGenericDict();
  // Chunks of one chain, of what the budget fits, and all 30 at once: the same chains.
  for (const auto* r : {&budgeted, &one}) {
    CHECK(torch::allclose(r->at("z").toTensor(), whole.at("z").toTensor(), 1e-5, 1e-6));
    CHECK(torch::allclose(r->at("energy").toTensor(), whole.at("energy").toTensor(), 1e-5, 1e-6));
  }
}
