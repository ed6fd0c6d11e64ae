// A process of the distributed tests (tests/distributed/run.sh starts several):
//   dist_probe collectives   all_reduce, broadcast and gather, checked; prints "ok <rank>"
//   dist_probe die           the last rank exits after the first all_reduce; the others try another
//   dist_probe train B [SEED] data-parallel training at batch B a rank; rank 0 prints "nll <held-out NLL>"
//   dist_probe resume DIR PHASE  a checkpointed run: full (uninterrupted), part (rank 1 alone asks to
//                            stop at step 50), rest (resumes part), missing; only rank 0 names files
//   dist_probe sample N      sharded sampling of N samples per condition; rank 0 compares with its own single run
//   dist_probe write-models DIR  toy TorchScript generator (8 -> 16) and encoder (16 -> 5 logits) for the tool
//   dist_probe hold-port P   listens on port P for 60 s (a port in use)
//   dist_probe free-port     prints a free port on the loopback
//   dist_probe compare-samples A B  two samples files of the tool: same keys, shapes, conditions and
//                            `ok`; z, x and energy equal within float32 rounding (see below)
// TR0N_DIST_TIMEOUT_MS bounds every collective (default 10 s here).
#include "support/toy_models.hpp"

#include <tr0n/distributed/process_group.hpp>
#include <tr0n/distributed/sample.hpp>
#include <tr0n/distributed/train.hpp>

#include <torch/script.h>
#include <torch/serialize.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
struct stop_at {
  int64_t step;
  bool on_step(const tr0n::step_info& i) const { return i.step == step; }
};

std::vector<torch::Tensor> parameters_of(tr0n::mixture_translator& q) {
  std::vector<torch::Tensor> out;
  for (const auto& p : q->parameters()) out.push_back(p.detach().clone());
  return out;
}

int listen_on(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0) return -1;
  return fd;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "free-port") {
    const int fd = listen_on(0);
    sockaddr_in a{};
    socklen_t n = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    std::printf("%d\n", ntohs(a.sin_port));
    ::close(fd);
    return 0;
  }
  if (mode == "write-models") {
    torch::manual_seed(3);
    auto save = [&](const std::string& name, const torch::Tensor& w, const std::string& body) {
      torch::jit::Module m(name);
      m.register_parameter("w", w, /*is_buffer=*/false);
      m.define("def forward(self, x):\n    return " + body + "\n");
      m.save(std::string(argv[2]) + "/" + name + ".pt");
    };
    save("generator", torch::randn({8, 16}), "torch.tanh(torch.matmul(x * 1.5, self.w))");
    save("encoder", torch::randn({16, 5}) * 2, "torch.matmul(x, self.w)");
    return 0;
  }
  if (mode == "compare-samples") {
    // Bitwise equality holds only where both runs multiply matrices of the same shapes with the same
    // thread counts. A sharded run gives each rank other rows than one process's chunks (75 against
    // 150 here), and BLAS kernels are not bit-reproducible across shapes: on a 2-core AMD EPYC the
    // files differed by up to 1e-5 (x, after 10 steps). 1e-3 (absolute, plus relative) leaves 100x
    // room for other CPUs and is still far below what a wrong seed, a block sampled twice or rows
    // out of order give (differences of order 1 in z and x).
    const auto load = [](const char* path) { return torch::pickle_load(tr0n::read_bytes(path)).toGenericDict(); };
    const auto a = load(argv[2]), b = load(argv[3]);
    if (a.size() != b.size()) {
      std::fprintf(stderr, "compare-samples: %zu keys against %zu\n", a.size(), b.size());
      return 1;
    }
    for (const auto& entry : a) {
      const auto key = entry.key().toStringRef();
      if (!b.contains(key)) {
        std::fprintf(stderr, "compare-samples: '%s' is missing from the second file\n", key.c_str());
        return 1;
      }
      const auto x = entry.value().toTensor(), y = b.at(key).toTensor();
      const bool exact = key == "ok" || key == "conditions";
      const bool same = x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type() &&
                        (exact ? torch::equal(x, y) : torch::allclose(x, y, /*rtol=*/1e-3, /*atol=*/1e-3, /*equal_nan=*/true));
      if (!same) {
        std::fprintf(stderr, "compare-samples: '%s' differs (max |difference| %g)\n", key.c_str(),
                     x.sizes() == y.sizes() ? (x.to(torch::kDouble) - y.to(torch::kDouble)).abs().max().item<double>() : -1.0);
        return 1;
      }
      if (!exact && x.numel() > 0)
        std::printf("%s: max |difference| %g\n", key.c_str(), (x.to(torch::kDouble) - y.to(torch::kDouble)).abs().max().item<double>());
    }
    return 0;
  }
  if (mode == "hold-port") {
    if (listen_on(std::atoi(argv[2])) < 0) return 1;
    std::printf("holding\n");
    std::fflush(stdout);
    ::sleep(60);
    return 0;
  }
  try {
    tr0n::distributed::group_options options;
    options.timeout = std::chrono::milliseconds(std::getenv("TR0N_DIST_TIMEOUT_MS") ? std::atoll(std::getenv("TR0N_DIST_TIMEOUT_MS")) : 10000);
    auto group = tr0n::distributed::process_group::from_environment(options);
    const auto r = group.rank(), w = group.world_size();
    auto t = torch::full({3}, static_cast<double>(r + 1), torch::kFloat64);
    group.all_reduce_sum(t);
    const double expected = static_cast<double>(w * (w + 1) / 2);
    if (!torch::equal(t, torch::full({3}, expected, torch::kFloat64))) {
      std::fprintf(stderr, "rank %lld: all_reduce gave %f, expected %f\n", static_cast<long long>(r), t[0].item<double>(), expected);
      return 1;
    }
    if (mode == "train") {
      // The sampler tests' toy problem: an MLP generator, a sharpened linear classifier, 5 classes.
      torch::manual_seed(3);
      tr0n_test::mlp_generator g(8, 32, 16);
      tr0n_test::linear_classifier f(16, 5, 3.0);
      torch::manual_seed(100 + static_cast<uint64_t>(r));  // different starts: the broadcast must make them equal
      tr0n::mixture_translator q(
          tr0n::mixture_translator_options(5, 8).components(4).transform(tr0n::condition_transform::softmax));
      const auto report = tr0n::distributed::train_translator(
          group, q, g, f, tr0n::translator_training_options().steps(400).batch_size(std::atoll(argv[2])).lr(3e-3).seed(argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 5));
      // Every rank ends with the same parameters.
      std::vector<torch::Tensor> flat;
      for (const auto& p : q->parameters()) flat.push_back(p.detach().reshape({-1}));
      const auto mine = torch::cat(flat);
      const auto all = group.gather(mine.unsqueeze(0));
      // The held-out NLL, on pairs from a fixed stream.
      torch::NoGradGuard no_grad;
      tr0n::generator_scope held_out(std::optional<uint64_t>(99), torch::kCPU);
      const auto z = g->prior().sample(4000, torch::TensorOptions());
      const auto c = torch::softmax(f->forward(g->forward(z)), -1);
      const double nll = -q->log_prob(z, c).mean().item<double>();
      if (group.is_root()) {
        for (const auto& other : all)
          if (!torch::equal(other.squeeze(0), mine)) {
            std::fprintf(stderr, "train: the ranks' parameters differ\n");
            return 1;
          }
        std::printf("nll %.4f loss %.4f\n", nll, report.losses.index({torch::indexing::Slice(-50)}).mean().item<double>());
      }
      return 0;
    }
    if (mode == "resume") {
      // A synthetic set whose epochs wrap, condition noise and periodic checkpoints: every
      // rank's streams, order and cursor must come back.
      torch::set_num_threads(1);
      const std::string dir = argv[2], phase = argv[3];
      torch::manual_seed(3);
      tr0n_test::mlp_generator g(8, 32, 16);
      tr0n_test::linear_classifier f(16, 5, 3.0);
      torch::manual_seed(100 + static_cast<uint64_t>(r));
      tr0n::mixture_translator q(
          tr0n::mixture_translator_options(5, 8).components(4).transform(tr0n::condition_transform::softmax));
      // Rank 0's options decide: the others name no files (and a seed of their own, unused).
      auto options = tr0n::translator_training_options().steps(120).batch_size(16).dataset_size(200).lr(3e-3)
                         .condition_noise(0.05).seed(r == 0 ? 7 : 8);
      if (r == 0) {
        options.checkpoint_path(dir + (phase == "full" ? "/full.ckpt" : "/part.ckpt")).checkpoint_every(25);
        if (phase == "rest") options.resume_from(dir + "/part.ckpt");
        if (phase == "missing") options.resume_from(dir + "/none.ckpt");
      }
      const auto report = phase == "part" && r == 1
                              ? tr0n::distributed::train_translator(group, q, g, f, options, stop_at{50})
                              : tr0n::distributed::train_translator(group, q, g, f, options);
      std::printf("steps %lld\n", static_cast<long long>(report.steps_done));
      if (!group.is_root()) return 0;
      auto state = parameters_of(q);
      state.push_back(report.losses);
      if (phase == "full") torch::save(state, dir + "/full.pt");
      if (phase == "rest") {
        std::vector<torch::Tensor> full;
        torch::load(full, dir + "/full.pt");
        for (size_t i = 0; i < state.size(); ++i)
          if (!torch::equal(state[i], full[i])) {
            std::fprintf(stderr, "resume: tensor %zu differs from the uninterrupted run's\n", i);
            return 1;
          }
        std::printf("same as the uninterrupted run\n");
      }
      return 0;
    }
    if (mode == "sample") {
      torch::manual_seed(3);
      tr0n_test::mlp_generator g(8, 32, 16);
      tr0n_test::linear_classifier f(16, 5, 3.0);
      tr0n::mixture_translator q(
          tr0n::mixture_translator_options(5, 8).components(4).transform(tr0n::condition_transform::softmax));
      tr0n::sampler s(g, f, tr0n::cross_entropy{}, q,
                      tr0n::sampler_options().steps(8).momentum(0.5).grad_clip(5).max_batch(64).seed(11),
                      tr0n::init::translator_sample{}, tr0n::constant_step{0.05}, tr0n::fixed_noise{0.02});
      const auto c = tr0n::one_hot_conditions(torch::arange(5), 5);
      const int64_t n = std::atoll(argv[2]);
      const auto sharded = tr0n::distributed::sample(group, s, c, n);
      if (!group.is_root()) return 0;
      // Bitwise: the single run's chunks are the stream blocks (max_batch 64), so both multiply
      // matrices of the same shapes, with the same thread count (every rank's default).
      const auto single = s.sample(c, n);
      const bool same = sharded.z.sizes() == single.z.sizes() && torch::equal(sharded.z, single.z) &&
                        torch::equal(sharded.x, single.x) && torch::equal(sharded.energy, single.energy) &&
                        torch::equal(sharded.ok, single.ok);
      if (!same) {
        std::fprintf(stderr, "sample: the sharded run differs from the single one (max |dz| %g)\n",
                     sharded.z.sizes() == single.z.sizes() ? (sharded.z - single.z).abs().max().item<double>() : -1.0);
        return 1;
      }
      std::printf("same %lld samples\n", static_cast<long long>(single.z.size(0)));
      return 0;
    }
    if (mode == "die") {
      if (r == w - 1) std::_Exit(3);  // no goodbye: the others' next collective must fail, not hang
      auto again = torch::ones({1});
      group.all_reduce_sum(again);
      std::fprintf(stderr, "rank %lld: the second all_reduce succeeded without the dead rank\n", static_cast<long long>(r));
      return 4;
    }
    auto b = torch::full({2}, static_cast<double>(r == 0 ? 42 : -1));
    group.broadcast(b);
    if (b[1].item<double>() != 42) return 1;
    const auto rows = torch::arange((r + 1) * 2, torch::kFloat32).view({r + 1, 2}) + 100 * r;
    const auto all = group.gather(rows);
    if (group.is_root()) {
      if (static_cast<int64_t>(all.size()) != w) return 1;
      for (int64_t k = 0; k < w; ++k) {
        const auto want = torch::arange((k + 1) * 2, torch::kFloat32).view({k + 1, 2}) + 100 * k;
        if (!torch::equal(all[static_cast<size_t>(k)], want)) {
          std::fprintf(stderr, "gather: rank %lld's rows differ\n", static_cast<long long>(k));
          return 1;
        }
      }
    } else if (!all.empty()) {
      return 1;
    }
    group.barrier();
    std::printf("ok %lld of %lld%s\n", static_cast<long long>(r), static_cast<long long>(w), group.alone() ? " (alone)" : "");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
