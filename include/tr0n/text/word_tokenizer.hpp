#pragma once
/// \file
/// `word_tokenizer`: the tokenisation of word-level text towers, such as the
/// small CLIP that `examples/fashion_text` trains and exports. The rule, which
/// any other language can reproduce:
///
/// 1. ASCII letters are lower-cased;
/// 2. a word is a maximal run of letters, digits, `-` or `'`; every other
///    character separates words;
/// 3. a word's id is its index in the vocabulary; index 0 is padding and
///    never a word;
/// 4. each text becomes `context_length` ids, padded with 0 at the end. An
///    empty text, a text with more words than that, or a word outside the
///    vocabulary is an error that names the problem (`unknown_word_error`
///    names the word).
///
/// In Python, with a tower exported by the text job:
/// ```
/// m = torch.jit.load("models/clip_text.ts.pt")
/// words = re.findall(r"[a-z0-9'-]+", "A dark sandal".lower())
/// ids = [m.vocabulary.index(w) for w in words] + [0] * (m.context_length - len(words))
/// embedding = m(torch.tensor([ids]))
/// ```
#include <tr0n/io/atomic_file.hpp>
#include <tr0n/detail/check.hpp>

#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tr0n {

/// A word that is not in the vocabulary; `word()` is the word, lower-cased,
/// and `text()` the text it came from.
class unknown_word_error : public std::invalid_argument {
 public:
  unknown_word_error(std::string word, std::string_view text)
      : std::invalid_argument("tr0n: unknown word '" + word + "' in \"" + std::string(text) +
                              "\" (not in the text encoder's vocabulary)"),
        word_(std::move(word)),
        text_(text) {}
  const std::string& word() const noexcept { return word_; }
  /// The text the word came from.
  const std::string& text() const noexcept { return text_; }

 private:
  std::string word_, text_;
};

class word_tokenizer {
 public:
  /// `vocabulary[0]` is the padding entry; every other entry is one word as
  /// `words` would split it, each at most once.
  word_tokenizer(std::vector<std::string> vocabulary, int64_t context_length)
      : vocabulary_(std::move(vocabulary)), context_length_(context_length) {
    detail::check_positive(context_length, "word_tokenizer: context_length");
    if (vocabulary_.size() < 2) detail::fail("word_tokenizer: the vocabulary needs padding and at least one word");
    for (size_t i = 1; i < vocabulary_.size(); ++i) {
      const auto& w = vocabulary_[i];
      const auto split = words(w);
      if (split.size() != 1 || split[0] != w)
        detail::fail("word_tokenizer: vocabulary entry ", i, " '", w, "' is not one lower-case word");
      if (!ids_.emplace(w, static_cast<int64_t>(i)).second)
        detail::fail("word_tokenizer: vocabulary entry ", i, " '", w, "' appears twice");
    }
  }

  /// Reads a vocabulary file: one entry per line, in id order, line 1 the padding entry.
  static word_tokenizer read(const std::string& path, int64_t context_length) {
    std::ifstream in(path);
    if (!in) detail::fail(path, ": cannot open the vocabulary file");
    std::vector<std::string> vocabulary;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      vocabulary.push_back(line);
      if (vocabulary.size() > 10'000'000) detail::fail(path, ": more than 10 million vocabulary entries");
    }
    return word_tokenizer(std::move(vocabulary), context_length);
  }

  /// Writes the vocabulary in the format `read` takes, atomically; false if writing failed.
  bool write(const std::string& path) const {
    std::string text;
    for (const auto& w : vocabulary_) text += w + '\n';
    try {
      write_file_atomically(path, std::string_view(text));
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  /// The words of `text` (rules 1 and 2).
  static std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::string current;
    for (char ch : text) {
      const auto u = static_cast<unsigned char>(ch);
      const bool alpha = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
      if (alpha || (u >= '0' && u <= '9') || ch == '-' || ch == '\'') {
        current.push_back(alpha ? static_cast<char>(u | 0x20) : ch);
      } else if (!current.empty()) {
        out.push_back(std::move(current));
        current.clear();
      }
    }
    if (!current.empty()) out.push_back(std::move(current));
    return out;
  }

  /// The ids of `text`, padded to `context_length()`.
  std::vector<int64_t> ids(std::string_view text) const {
    const auto ws = words(text);
    if (ws.empty()) detail::fail("tr0n: the text \"", std::string(text), "\" has no words");
    if (static_cast<int64_t>(ws.size()) > context_length_)
      detail::fail("tr0n: the text \"", std::string(text), "\" has ", ws.size(),
                   " words; the text encoder takes at most ", context_length_);
    std::vector<int64_t> out(static_cast<size_t>(context_length_), 0);
    for (size_t i = 0; i < ws.size(); ++i) {
      const auto it = ids_.find(ws[i]);
      if (it == ids_.end()) throw unknown_word_error(ws[i], text);
      out[i] = it->second;
    }
    return out;
  }

  /// Token ids [N, context_length] (int64, CPU) for `texts`.
  torch::Tensor encode(const std::vector<std::string>& texts) const {
    auto out = torch::zeros({static_cast<int64_t>(texts.size()), context_length_}, torch::kLong);
    auto a = out.accessor<int64_t, 2>();
    for (size_t n = 0; n < texts.size(); ++n) {
      const auto row = ids(texts[n]);
      for (size_t i = 0; i < row.size(); ++i) a[static_cast<int64_t>(n)][static_cast<int64_t>(i)] = row[i];
    }
    return out;
  }

  const std::vector<std::string>& vocabulary() const noexcept { return vocabulary_; }
  int64_t context_length() const noexcept { return context_length_; }

 private:
  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t context_length_;
};

}  // namespace tr0n
