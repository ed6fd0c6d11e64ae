// Fuzz targets, one per loader of untrusted bytes: translator files, training
// checkpoints, tensor files (conditions), IDX files and condition images.
//
// Built two ways from this one file:
//  - a libFuzzer target with clang (`-fsanitize=fuzzer,address,undefined`),
//    one per loader, chosen with -DTR0N_FUZZ_TARGET=<name> (see
//    tests/fuzz/README.md and the `fuzz` preset);
//  - the corpus replay, in the normal build and `ctest`
//    (-DTR0N_FUZZ_REPLAY): every file of tests/fuzz/corpus/<name>/ and
//    tests/fuzz/regressions/<name>/ through the same function. With
//    `--write-seeds DIR` it writes the seed corpus.
//
// The contract each target checks: a loader returns a usable value, or throws
// tr0n's one error type (`std::invalid_argument`; `idx_error` for IDX files)
// with a one-line message that names the input. Any other exception, a crash,
// a hang or a huge allocation is a finding.
#include "cli/images.hpp"
#include <fashion/idx.hpp>

#include <tr0n.hpp>

#include <stb_image_write.h>
#include <torch/serialize.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace tr0n_fuzz {

/// A finding: says what and stops (libFuzzer keeps the input).
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

/// Whether to say what became of each input (the replay does; a fuzzer with TR0N_FUZZ_VERBOSE=1).
inline bool verbose() {
#if defined(TR0N_FUZZ_REPLAY)
  return true;
#else
  static const bool v = std::getenv("TR0N_FUZZ_VERBOSE") != nullptr;
  return v;
#endif
}

/// Runs `load`; an error must be the expected type, one line, naming `name`.
template <class Expected = std::invalid_argument>
int guarded(const std::string& name, const std::function<void()>& load) {
  try {
    load();
    if (verbose()) std::fprintf(stderr, "  loaded\n");
  } catch (const Expected& e) {
    const std::string what = e.what();
    if (verbose()) std::fprintf(stderr, "  refused: %s\n", what.c_str());
    if (what.find('\n') != std::string::npos) finding("a message of more than one line: " + what);
    if (what.find(name) == std::string::npos) finding("a message that does not name the input: " + what);
  } catch (const std::exception& e) {
    finding(std::string("an exception that is not tr0n's error: ") + typeid(e).name() + ": " + e.what());
  }
  return 0;
}

inline std::vector<char> bytes_of(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size};
}

/// The options the translator and checkpoint targets expect (their seeds use them).
inline tr0n::mixture_translator_options small_translator() {
  return tr0n::mixture_translator_options(4, 3).components(2).hidden(8).transform(tr0n::condition_transform::softmax);
}
inline tr0n::translator_training_options small_training() {
  return tr0n::translator_training_options().steps(6).batch_size(8).seed(1).dataset_size(20);
}

int translator(const uint8_t* data, size_t size) {
  const std::string name = "fuzz_translator.pt";
  return guarded(name, [&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    auto q = tr0n::load_mixture_translator(in, name);
    // A loaded translator must work: one density and one draw.
    torch::NoGradGuard no_grad;
    const auto c = torch::softmax(torch::zeros({2, q->condition_dim()}), -1);
    auto lp = q->log_prob(torch::zeros({2, q->latent_dim()}), c);
    auto z = q->sample(c, 1);
    if (lp.size(0) != 2 || z.size(0) != 2) finding("a loaded translator gives wrong shapes");
  });
}

int checkpoint(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.ckpt";
  return guarded(name, [&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    tr0n::mixture_translator q(small_translator());
    const auto options = small_training();
    auto params = q->parameters();  // in Adam's order: the scale (log_std) last, in its own group
    std::stable_partition(params.begin(), params.end(), [&](const torch::Tensor& p) { return !p.is_same(q->log_std); });
    auto state = tr0n::detail::read_checkpoint(in, name, options.record(), options.seed(), *q, params,
                                               options.steps(), options.dataset_size());
    auto gen = tr0n::make_generator(0);
    std::mt19937_64 host;
    tr0n::detail::restore_streams(state.streams.at(0), gen, host, name, state.libtorch);
  });
}

int tensor_file(const uint8_t* data, size_t size) {
  const std::string name = "fuzz_conditions.pt";
  return guarded(name, [&] {
    auto t = tr0n::parse_tensor_file(bytes_of(data, size), name);
    (void)t.sum();  // a returned tensor must be readable
  });
}

int idx(const uint8_t* data, size_t size) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("tr0n_fuzz_" + std::to_string(::getpid()) + ".idx.gz")).string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  return guarded<fashion::idx_error>(path, [&] {
    auto t = fashion::read_idx(path);
    (void)t.sum();
  });
}

int image(const uint8_t* data, size_t size) {
  const std::string name = "fuzz_condition.png";
  return guarded(name, [&] {
    auto x = tr0n_cli::decode_image(bytes_of(data, size), name, torch::zeros({1, 3, 8, 8}));
    if (x.sizes() != torch::IntArrayRef{1, 3, 8, 8}) finding("a decoded image of the wrong shape");
  });
}

inline const std::map<std::string, int (*)(const uint8_t*, size_t)>& targets() {
  static const std::map<std::string, int (*)(const uint8_t*, size_t)> all{
      {"translator", translator}, {"checkpoint", checkpoint}, {"tensor_file", tensor_file},
      {"idx", idx},               {"image", image}};
  return all;
}

inline void init() {
  torch::set_num_threads(1);
  std::setvbuf(stderr, nullptr, _IOLBF, 0);
}

}  // namespace tr0n_fuzz

#if defined(TR0N_FUZZ_TARGET)
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tr0n_fuzz::init();
  return 0;
}
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tr0n_fuzz::TR0N_FUZZ_TARGET(data, size);
}
#endif

#if defined(TR0N_FUZZ_REPLAY)
namespace {

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string gzip(const std::string& plain) {
  z_stream s{};
  deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&s, plain.size()) + 32, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  s.avail_in = static_cast<uInt>(plain.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

std::string idx_bytes(const std::vector<int64_t>& dims) {
  std::string b = {0, 0, 8, static_cast<char>(dims.size())};
  int64_t count = 1;
  for (auto d : dims) {
    for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<char>((d >> shift) & 0xff));
    count *= d;
  }
  for (int64_t i = 0; i < count; ++i) b.push_back(static_cast<char>(i * 7));
  return b;
}

/// The seed corpus: a valid input of each kind, and a few damaged ones.
void write_seeds(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  torch::manual_seed(0);
  tr0n::mixture_translator q(tr0n_fuzz::small_translator());
  std::ostringstream translator;
  torch::save(q, translator);
  write_file(dir / "translator" / "valid.pt", translator.str());
  write_file(dir / "translator" / "truncated.pt", translator.str().substr(0, translator.str().size() / 2));
  write_file(dir / "translator" / "empty.pt", "");

  struct identity {
    using tr0n_tag = tr0n::encoder_tag;
    torch::Tensor forward(const torch::Tensor& x) { return x.narrow(1, 0, 4); }
    int64_t condition_dim() const { return 4; }
  };
  auto g = tr0n::make_generator([](const torch::Tensor& z) { return torch::cat({z, z.narrow(1, 0, 1)}, 1); },
                                tr0n::standard_normal(3));
  const auto ckpt = (fs::temp_directory_path() / "tr0n_fuzz_seed.ckpt").string();
  identity f;
  tr0n::mixture_translator trained(tr0n_fuzz::small_translator());
  tr0n::train_translator(trained, g, f, tr0n_fuzz::small_training().checkpoint_path(ckpt).checkpoint_every(3).steps(6));
  const auto bytes = tr0n::read_bytes(ckpt);
  write_file(dir / "checkpoint" / "valid.ckpt", std::string(bytes.begin(), bytes.end()));
  write_file(dir / "checkpoint" / "translator.pt", translator.str());

  auto pickled = [](const torch::IValue& v) {
    auto b = torch::pickle_save(v);
    return std::string(b.begin(), b.end());
  };
  write_file(dir / "tensor_file" / "float.pt", pickled(torch::softmax(torch::randn({2, 4}), -1)));
  write_file(dir / "tensor_file" / "labels.pt", pickled(torch::tensor({1, 3}, torch::kLong)));
  c10::Dict<std::string, torch::Tensor> dict;
  dict.insert("z", torch::zeros({1, 2}));
  write_file(dir / "tensor_file" / "dict.pt", pickled(dict));
  write_file(dir / "tensor_file" / "truncated.pt", pickled(torch::ones({3})).substr(0, 100));

  write_file(dir / "idx" / "images.idx", idx_bytes({2, 3, 3}));
  write_file(dir / "idx" / "labels.idx.gz", gzip(idx_bytes({5})));
  write_file(dir / "idx" / "huge_header.idx", idx_bytes({0}).substr(0, 4) + std::string("\xff\xff\xff\xff", 4));

  std::string png;
  const unsigned char pixels[4 * 4 * 3] = {0, 50, 100, 150, 200, 250};
  stbi_write_png_to_func([](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), n); },
                         &png, 4, 4, 3, pixels, 4 * 3);
  write_file(dir / "image" / "rgb.png", png);
  write_file(dir / "image" / "truncated.png", png.substr(0, png.size() / 2));
}

}  // namespace

// tr0n_fuzz_replay TARGET DIR...: every file under each DIR through TARGET.
// tr0n_fuzz_replay --write-seeds DIR: writes the seed corpus.
int main(int argc, char** argv) {
  tr0n_fuzz::init();
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    write_seeds(argv[2]);
    return 0;
  }
  if (argc < 3 || !tr0n_fuzz::targets().count(argv[1])) {
    std::fprintf(stderr, "usage: %s translator|checkpoint|tensor_file|idx|image DIR... | --write-seeds DIR\n", argv[0]);
    return 2;
  }
  const auto target = tr0n_fuzz::targets().at(argv[1]);
  int files = 0;
  for (int i = 2; i < argc; ++i) {
    if (!std::filesystem::exists(argv[i])) continue;
    for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i])) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      std::fprintf(stderr, "%s\n", e.path().c_str());
      target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++files;
    }
  }
  std::printf("%s: %d files replayed, no finding\n", argv[1], files);
  return files > 0 ? 0 : 1;
}
#endif
