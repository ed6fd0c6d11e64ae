// Files: tensor files, streamed and atomic writes, and every loader against
// empty, truncated, random and wrong-shape files.
#include "support/script_files.hpp"

#include <fashion/idx.hpp>

#include <signal.h>
#include <stb_image_write.h>

#include <random>

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
