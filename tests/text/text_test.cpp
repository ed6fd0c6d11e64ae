// The word tokenizer and text towers that carry their tokenisation.
#include "support/script_files.hpp"

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
