// The Fashion-MNIST example's IDX reader: real files, and each failure named.
#include <fashion/idx.hpp>
#include <fashion/metrics.hpp>
#include <fashion/captions.hpp>
#include <fashion/clip.hpp>

#include <catch2/catch.hpp>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  auto dir = fs::temp_directory_path() / "tr0n_idx_test";
  fs::create_directories(dir);
  return dir;
}

void write_gz(const fs::path& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(f);
}
}  // namespace

TEST_CASE("IDX files are read with their declared shape", "[examples][idx]") {
  auto path = scratch() / "small.gz";
  // rank 3: 2 x 2 x 3 bytes 0..11
  std::vector<unsigned char> bytes{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (unsigned char i = 0; i < 12; ++i) bytes.push_back(i);
  write_gz(path, bytes);
  auto t = fashion::read_idx(path);
  CHECK(t.sizes() == torch::IntArrayRef{2, 2, 3});
  CHECK(t[1][1][2].item<int>() == 11);

  // An uncompressed file reads the same.
  auto plain = scratch() / "plain.idx";
  std::ofstream(plain, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  CHECK(torch::equal(fashion::read_idx(plain), t));
}

TEST_CASE("IDX failures name the file and the problem", "[examples][idx]") {
  CHECK_THROWS_WITH(fashion::read_idx(scratch() / "missing.gz"),
                    Catch::Contains("missing.gz") && Catch::Contains("not found") &&
                        Catch::Contains("dataset-fashion-mnist"));
  auto bad = scratch() / "bad.gz";
  write_gz(bad, {0, 0, 9, 1, 0, 0, 0, 1, 7});
  CHECK_THROWS_WITH(fashion::read_idx(bad), Catch::Contains("bad.gz") && Catch::Contains("bad magic"));
  auto truncated = scratch() / "truncated.gz";
  write_gz(truncated, {0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3});
  CHECK_THROWS_WITH(fashion::read_idx(truncated), Catch::Contains("truncated.gz") && Catch::Contains("truncated") &&
                                                       Catch::Contains("expected 10 bytes"));
  auto short_header = scratch() / "short.gz";
  write_gz(short_header, {0, 0, 8});
  CHECK_THROWS_WITH(fashion::read_idx(short_header), Catch::Contains("truncated"));
}

TEST_CASE("the real Fashion-MNIST files load, when installed", "[examples][idx]") {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "t10k-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  auto test = fashion::load_split(dir, "t10k");
  CHECK(test.images.sizes() == torch::IntArrayRef{10000, 1, 28, 28});
  CHECK(test.labels.bincount().eq(1000).all().item<bool>());
  CHECK(test.images.max().item<double>() == Approx(1.0));
}

TEST_CASE("Frechet distance and diversity have their closed forms", "[examples][metrics]") {
  torch::manual_seed(0);
  auto a = torch::randn({20000, 3}, torch::kFloat64);
  auto b = 2.0 * torch::randn({20000, 3}, torch::kFloat64) + 1.0;
  // N(0, I) vs N(1, 4 I): |mu|^2 + tr(I + 4I - 2 * 2I) = 3 + 3 = 6; sampling error
  // of the covariances at n = 20000 is ~1%, so 0.25 is ~4 standard errors.
  CHECK(fashion::frechet_distance(a, b) == Approx(6.0).margin(0.25));
  CHECK(fashion::frechet_distance(a, a) == Approx(0.0).margin(1e-6));
  auto images = torch::tensor({0.0, 3.0, 0.0, 4.0}).view({4, 1});
  auto labels = torch::tensor({0, 0, 1, 1});
  CHECK(fashion::within_class_diversity(images, labels, 2) == Approx(3.5));
}

TEST_CASE("the text job's captions, attributes and contrastive loss", "[examples][text]") {
  using namespace fashion_text;
  CHECK(caption(0, 9, 0, 0) == "a photo of an ankle boot");
  CHECK(caption(1, 7, 2, 1) == "a picture of a dark narrow sneaker");
  CHECK(caption(2, 0, 0, 2) == "a wide t-shirt");
  CHECK(caption(3, 8, 1, 0) == "light bag");
  // Every caption fits the context: the longest has context_length words.
  const auto table = caption_table::make(tokenizer());
  CHECK(table.tokens.size(0) == templates * 9 * classes);
  CHECK((table.tokens.select(1, context_length - 1) != 0).any().item<bool>());
  auto r = caption_table::rows(torch::tensor({1}), torch::tensor({7}), torch::tensor({2}), torch::tensor({1}));
  CHECK(torch::equal(table.tokens[r.item<int64_t>()], tokenizer().encode({caption(1, 7, 2, 1)})[0]));

  // Attributes: more ink is darker; a wide blob is wide. Terciles within each class.
  auto images = torch::zeros({6, 1, 28, 28});
  for (int64_t i = 0; i < 3; ++i) images[i].narrow(1, 9, 10).narrow(2, 9, 10).fill_(0.2 * (i + 1));  // squares
  images[3].narrow(1, 12, 4).narrow(2, 2, 24).fill_(1);   // wide bar
  images[4].narrow(1, 8, 12).narrow(2, 8, 12).fill_(1);   // square
  images[5].narrow(1, 2, 24).narrow(2, 12, 4).fill_(1);   // tall bar
  const auto labels = torch::tensor({0, 0, 0, 1, 1, 1}, torch::kLong);
  const auto m = attribute_measures(images);
  const auto cuts = tercile_thresholds(m, labels);
  const auto v = attribute_values(m, labels, cuts);
  CHECK(torch::equal(v.select(1, 0).narrow(0, 0, 3), torch::tensor({1, 0, 2}, torch::kLong)));  // light, -, dark
  CHECK(torch::equal(v.select(1, 1).narrow(0, 3, 3), torch::tensor({2, 0, 1}, torch::kLong)));  // wide, -, narrow

  // InfoNCE with repeated captions: every true pair counts as positive.
  auto e = torch::eye(3);
  auto img = torch::stack({e[0], e[0], e[1]}), txt = torch::stack({e[0], e[0], e[1]});
  auto diag_only = torch::eye(3, torch::kBool);
  auto all_true = torch::tensor({1, 1, 0, 1, 1, 0, 0, 0, 1}, torch::kBool).view({3, 3});
  auto scale = torch::full({}, 50.0);
  // Two identical pairs split their mass: treating the twin as a negative costs log 2.
  CHECK(info_nce(img, txt, all_true, scale).item<double>() == Approx(0.0).margin(1e-6));
  CHECK(info_nce(img, txt, diag_only, scale).item<double>() == Approx(2.0 / 3.0 * std::log(2.0)).epsilon(1e-4));
}
