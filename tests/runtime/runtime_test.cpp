// The runtime: the thread policy, and precision (bfloat16 runs, a model's own
// lowered copy).
#include "support/toy_models.hpp"
#include "support/problems.hpp"

#include <tr0n/runtime/allocator.hpp>
#include <tr0n/runtime/memory_probe.hpp>
#include <tr0n/runtime/threads.hpp>

#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace tr0n;
using namespace tr0n_test;

TEST_CASE("the thread policy never gives both pools every core", "[runtime][threads]") {
  const auto before = at::get_num_threads();
  const auto config = configure_threads(2);
  CHECK(config.threads == 2);
  if (config.blas_threads > 0) {
    CHECK(config.blas_threads == 2);
    CHECK(config.torch_threads == 1);
    CHECK_THAT(config.describe(), Catch::Contains("OpenBLAS 2") && Catch::Contains("intra-op 1"));
  } else {
    CHECK(config.torch_threads == 2);
  }
  at::set_num_threads(before);
}

TEST_CASE("bf16 runs the models in bfloat16 and keeps chains, energies and results in float32",
          "[sampler][precision]") {
  auto& p = problem();
  auto run = [&](precision compute) {
    sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(5).seed(3).precision(compute),
              init::translator_sample{}, constant_step{0.05}, fixed_noise{0.0});
    return s.sample(p.conditions(), 4);
  };
  const auto full = run(precision::fp32), half = run(precision::bf16);
  for (const auto* t : {&half.z, &half.x, &half.energy}) CHECK(t->scalar_type() == torch::kFloat32);
  // The models ran in bfloat16 (8-bit mantissa: rounding of about 4e-3 relative per product), so the
  // results differ from float32's, but only by that rounding carried through 5 small steps.
  CHECK_FALSE(torch::equal(full.x, half.x));
  const double dz = (half.z - full.z).abs().max().item<double>();
  const double de = ((half.energy - full.energy).abs() / full.energy.abs().clamp_min(1e-3)).max().item<double>();
  INFO("max |dz| " << dz << ", max relative energy difference " << de);
  CHECK(dz < 0.01);  // measured 4e-4 here
  CHECK(de < 0.1);   // measured 8.5e-3 here
  CHECK(half.ok.all().item<bool>());

  // The scope: products in bfloat16 inside, float32 again after; nothing at fp32.
  const auto x = torch::randn({4, 3}), w = torch::randn({2, 3});
  {
    tr0n::detail::precision_scope scope(precision::bf16, torch::kCPU);
    CHECK(torch::linear(x, w).scalar_type() == torch::kBFloat16);
    {
      tr0n::detail::precision_scope inner(precision::fp32, torch::kCPU);
      CHECK(torch::linear(x, w).scalar_type() == torch::kBFloat16);
    }
  }
  CHECK(torch::linear(x, w).scalar_type() == torch::kFloat32);

  CHECK_THROWS_WITH(run(precision::fp16), Catch::Contains("precision fp16 needs a CUDA device"));
  CHECK(parse_precision("bf16") == precision::bf16);
  CHECK_THROWS_WITH(parse_precision("fp8"), Catch::Contains("precision 'fp8': expected bf16, fp16 or fp32"));
}

namespace {
/// The toy MLP generator with its own bfloat16 copy (`tr0n::copy_lowered`), as a model opts in.
struct self_lowering_mlp {
  using tr0n_tag = generator_tag;
  mlp_generator g;
  lowered_copies<mlp_generator> copies{};
  std::shared_ptr<int> made = std::make_shared<int>(0);  // copies of the model share it, as they share `copies`
  torch::Tensor forward(const torch::Tensor& z) { return g->forward(z); }
  torch::Tensor forward(const torch::Tensor& z, precision p) {
    return copies
        .get(p,
             [&](torch::ScalarType t) {
               ++*made;
               mlp_generator c(g->l1->options.in_features(), g->l1->options.out_features(), g->l2->options.out_features());
               copy_lowered(*g, *c, t);
               return c;
             })
        ->forward(z);
  }
  const standard_normal& prior() const { return g->prior(); }
};

}  // namespace

TEST_CASE("a model's own bfloat16 copy gives the sampler autocast's results bit for bit", "[sampler][precision]") {
  auto& p = problem();
  self_lowering_mlp own{p.g};
  STATIC_REQUIRE(tr0n::detail::takes_precision<self_lowering_mlp>);
  auto run = [&](auto& g, precision compute) {
    sampler s(g, p.f, cross_entropy{}, p.q, sampler_options().steps(5).seed(3).precision(compute),
              init::translator_sample{}, constant_step{0.05}, fixed_noise{0.01});
    return s.sample(p.conditions(), 4);
  };
  // Autocast rounds the float32 matrices to bfloat16 at each call; the copy holds the same rounded values,
  // so the same products run on the same shapes: equal bit for bit on any machine.
  const auto cast_each_call = run(p.g, precision::bf16), own_copy = run(own, precision::bf16);
  CHECK(torch::equal(cast_each_call.z, own_copy.z));
  CHECK(torch::equal(cast_each_call.energy, own_copy.energy));
  CHECK(*own.made == 1);  // made once (the sampler holds a copy of `own`; copies share it), reused by every step
  CHECK(own.copies.get(precision::bf16, [](torch::ScalarType) -> mlp_generator { throw 0; })->l1->weight.scalar_type() ==
        torch::kBFloat16);
  CHECK(own.g->l1->weight.scalar_type() == torch::kFloat32);  // the model itself is untouched
  CHECK(torch::equal(run(own, precision::fp32).z, run(p.g, precision::fp32).z));
}

TEST_CASE("the memory probe measures what a chain takes, and sizes batches from it", "[runtime][memory]") {
  // G(z) = z A^T lifted to an image of `side` x `side`: a chain's forward and
  // backward hold a few copies of that image, so the measured cost grows with it.
  auto measure = [](int64_t side, int64_t budget = int64_t{1} << 30) {
    const auto weights = make_generator(2);  // not the global stream: a test below watches it
    linear_generator g{torch::randn({side * side, 4}, weights) * 0.1, torch::zeros({side * side}), standard_normal(4)};
    linear_encoder f{torch::randn({3, side * side}, weights) * 0.01};
    sampler s(g, f, squared_distance{}, sampler_options(), init::prior{});
    return measure_chain_memory(s, torch::zeros({2, 3}), budget);
  };
  const auto small = measure(16), large = measure(256);
  REQUIRE(small);
  REQUIRE(large);
  // A 256 x 256 float image is 256 KiB; forward and backward keep at least it and its gradient.
  CHECK(large->per_chain >= 2 * 256 * 256 * 4);
  CHECK(large->per_chain < 64 * 256 * 256 * 4);
  // 256 times the pixels: a much larger cost (not 256x: per-chain overheads are fixed).
  CHECK(large->per_chain > 20 * small->per_chain);
  CHECK(large->fixed >= 0);
  SECTION("a budget that two chains would break: one chain is probed, and all of it counted") {
    const auto tight = measure(256, large->per_chain + large->fixed);
    REQUIRE(tight);
    CHECK(tight->fixed == 0);
    // All of one chain's peak: what the two-chain probe split into fixed + per_chain (to a few
    // bytes of scalars, which differ between the probes).
    CHECK(static_cast<double>(tight->per_chain) == Approx(large->per_chain + large->fixed).epsilon(0.01));
    CHECK(tight->chains_within(large->per_chain + large->fixed) == 1);
  }
  SECTION("batches: what fits the budget, never fewer than one chain") {
    const chain_memory m{1000, 500};
    CHECK(m.chains_within(10'500) == 10);
    CHECK(m.chains_within(1'499) == 1);
    CHECK(m.chains_within(100) == 1);
  }
  SECTION("the probe leaves the caller's random stream alone") {
    torch::manual_seed(11);
    const auto expected = torch::randn({3});
    torch::manual_seed(11);
    measure(16);
    CHECK(torch::equal(torch::randn({3}), expected));
  }
}

TEST_CASE("map_large_tensors gives large CPU tensors mappings of their own, returned when freed",
          "[runtime][memory][allocator]") {
  // Installed for the rest of this test run: the tests after it run on it too.
  const bool on = map_large_tensors();
  CHECK(on == tr0n::detail::huge_pages_on_request());  // off where the kernel has no huge pages to give
  if (!on) {
    WARN("transparent huge pages are off here: map_large_tensors left the allocator alone");
    return;
  }
  auto& core = tr0n::detail::mapping_core::instance();
  auto in_table = [&](const void* p) {
    std::lock_guard<std::mutex> lock(core.mutex);
    return core.maps.count(const_cast<void*>(p)) == 1;
  };
  auto is_mapped = [](const void* p) {  // msync fails with ENOMEM on an address no mapping covers
    return msync(const_cast<void*>(p), 4096, MS_ASYNC) == 0;
  };
  auto big = torch::arange(int64_t{3} << 20, torch::kFloat32);  // 12 MiB
  const void* p = big.data_ptr();
  CHECK(reinterpret_cast<std::uintptr_t>(p) % (std::uintptr_t{2} << 20) == 0);
  CHECK(in_table(p));
  CHECK(is_mapped(p));
  CHECK(big[(int64_t{3} << 20) - 1].item<float>() == static_cast<float>((int64_t{3} << 20) - 1));
  CHECK(torch::equal(big.narrow(0, 0, 5), torch::arange(5, torch::kFloat32)));
  const auto small = torch::ones({1024});
  CHECK_FALSE(in_table(small.data_ptr()));  // under 4 MiB: the allocator it replaced
  big.reset();
  CHECK_FALSE(in_table(p));
  CHECK_FALSE(is_mapped(p));  // back to the system at once
  // LibTorch's raw interface, at both sizes.
  auto* allocator = c10::GetCPUAllocator();
  void* raw_big = allocator->raw_allocate(std::size_t{8} << 20);
  std::memset(raw_big, 1, std::size_t{8} << 20);
  void* raw_small = allocator->raw_allocate(64);
  allocator->raw_deallocate(raw_big);
  allocator->raw_deallocate(raw_small);
  CHECK_FALSE(in_table(raw_big));
  SECTION("the memory probe counts the mapped blocks") {
    linear_generator g{torch::randn({1024 * 1024, 4}) * 0.001, torch::zeros({1024 * 1024}), standard_normal(4)};
    linear_encoder f{torch::randn({3, 1024 * 1024}) * 0.001};
    sampler s(g, f, squared_distance{}, sampler_options(), init::prior{});
    const auto m = measure_chain_memory(s, torch::zeros({1, 3}), int64_t{1} << 30);
    REQUIRE(m);
    CHECK(m->per_chain >= 2 * (int64_t{4} << 20));  // a 4 MiB image and its gradient, at least
  }
}

TEST_CASE("a chunk smaller than its stream block draws the block's rows, bit for bit", "[runtime][random]") {
  std::mt19937_64 host(1);
  const auto block = make_generator(42);
  torch::Tensor whole_n, whole_u, whole_m;
  {
    chain_streams_scope scope(&block, 1, 10, 10, host);
    whole_n = random::randn({20, 3});  // two copies per chain, chain-major
    whole_u = random::rand({10});
    whole_m = random::multinomial(torch::rand({10, 5}, make_generator(1)), 1, true);
  }
  for (const auto& [offset, rows] : {std::pair<int64_t, int64_t>{0, 3}, {3, 4}, {7, 3}}) {
    INFO("rows " << offset << " to " << offset + rows);
    const auto own = make_generator(42);  // a fresh copy of the block's generator
    chain_streams_scope scope(&own, 1, 10, rows, host, offset, /*block_size=*/10);
    CHECK(torch::equal(random::randn({2 * rows, 3}), whole_n.narrow(0, 2 * offset, 2 * rows)));
    CHECK(torch::equal(random::rand({rows}), whole_u.narrow(0, offset, rows)));
    const auto probs = torch::rand({10, 5}, make_generator(1)).narrow(0, offset, rows);
    CHECK(torch::equal(random::multinomial(probs, 1, true), whole_m.narrow(0, offset, rows)));
  }
}
