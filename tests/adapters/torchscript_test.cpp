// TorchScript adapters on small TorchScript modules saved to a scratch folder:
// exact results, bfloat16 copies, load failures, and a CLIP-style target.
#include "support/script_files.hpp"

#include <torch/cuda.h>
#include <torch/nn/functional/normalization.h>

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

TEST_CASE("a generator with two latent inputs takes a joint prior's latent, cut into its parts", "[adapters][torchscript][parts]") {
  const auto table = read_tensor_file(two_inputs().table);
  torchscript_generator g(two_inputs().generator, joint_prior(truncated_normal(4, 2.0), codebook_prior(table)));
  STATIC_REQUIRE(Generator<decltype(g)>);
  CHECK(g.parts() == std::vector<int64_t>{4, 2});
  CHECK(g.prior().dim() == 6);
  auto direct = torch::jit::load(two_inputs().generator);
  const auto z = torch::randn({5, 6});
  CHECK(torch::equal(g.forward(z), direct.forward({z.narrow(1, 0, 4), z.narrow(1, 4, 2)}).toTensor()));
  // Gradients reach both parts.
  auto zr = z.clone().requires_grad_(true);
  const auto grad = torch::autograd::grad({g.forward(zr).sum()}, {zr})[0];
  CHECK(grad.narrow(1, 0, 4).abs().sum().item<double>() > 0);
  CHECK(grad.narrow(1, 4, 2).abs().sum().item<double>() > 0);
  CHECK(torch::equal(g.forward(z, precision::fp32), g.forward(z)));
  // The bfloat16 copy runs under autocast, as the sampler calls it (forward_in).
  CHECK(tr0n::detail::forward_in(precision::bf16, g, z).sizes() == torch::IntArrayRef{5, 3, 4, 4});
  SECTION("parts that do not match the module's inputs are named at load") {
    CHECK_THROWS_WITH(torchscript_generator(two_inputs().generator, standard_normal(6)),
                      Catch::Contains("two_inputs.pt") && Catch::Contains("probe batch"));
    CHECK_THROWS_WITH(torchscript_generator(two_inputs().generator, joint_prior(standard_normal(3), standard_normal(2))),
                      Catch::Contains("2 inputs of widths 3,2"));
  }
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

TEST_CASE("keep_only holds a TorchScript model once, in the precision it runs at",
          "[adapters][torchscript][precision][memory]") {
  torchscript_generator g(files().generator, standard_normal(latent));
  torchscript_encoder f(files().encoder, g.example_output());
  const auto z = torch::randn({5, latent});
  // Same module, same input, same shape before and after: equal bit for bit.
  const auto bf16_before = tr0n::detail::forward_in(precision::bf16, f, tr0n::detail::forward_in(precision::bf16, g, z));
  // The float32 modules, watched without holding them.
  c10::weak_intrusive_ptr<c10::ivalue::Object> g32(g.module()._ivalue()), f32(f.module()._ivalue());
  g.keep_only(precision::bf16);
  f.keep_only(precision::bf16);
  CHECK(g32.expired());  // freed: nothing else held them
  CHECK(f32.expired());
  CHECK(g.module().attr("w").toTensor().scalar_type() == torch::kBFloat16);
  const auto after = tr0n::detail::forward_in(precision::bf16, f, tr0n::detail::forward_in(precision::bf16, g, z));
  CHECK(torch::equal(after, bf16_before));
  // Another precision is refused in one line naming the file, not run on the wrong weights.
  CHECK_THROWS_AS(g.forward(z), model_load_error);
  CHECK_THROWS_WITH(g.forward(z, precision::fp32), Catch::Contains(files().generator) && Catch::Contains("kept to bf16"));
  CHECK_THROWS_WITH(f.forward(torch::rand({5, 3, 4, 4})), Catch::Contains("kept to bf16"));
  g.keep_only(precision::bf16);  // again: nothing changes
  CHECK(torch::equal(tr0n::detail::forward_in(precision::bf16, g, z), tr0n::detail::forward_in(precision::bf16, g, z)));
  SECTION("an adapter that holds the only handle lowers its module in place") {
    torchscript_generator h(files().generator, standard_normal(latent));
    const c10::weak_intrusive_ptr<c10::ivalue::Object> object(h.module()._ivalue());
    const auto w32 = h.module().attr("w").toTensor();
    const c10::weak_intrusive_ptr<c10::StorageImpl> storage32(
        c10::intrusive_ptr<c10::StorageImpl>::reclaim_copy(w32.storage().unsafeGetStorageImpl()));
    const auto w32_values = w32.clone();
    h.keep_only(precision::bf16);  // no bfloat16 call before: no copy was made
    CHECK_FALSE(object.expired());  // the same module, not a copy
    CHECK(h.module().attr("w").toTensor().scalar_type() == torch::kBFloat16);
    CHECK(torch::equal(h.module().attr("w").toTensor(), w32_values.to(torch::kBFloat16)));
    // The same bfloat16 values in the same ops on the same shapes as the copy: equal bit for bit.
    CHECK(torch::equal(tr0n::detail::forward_in(precision::bf16, f, tr0n::detail::forward_in(precision::bf16, h, z)),
                       bf16_before));
    CHECK(storage32.expired());  // the float32 matrix is freed, though this test holds its tensor
  }
  SECTION("in place, a module that fails lowered is loaded again and run under autocast") {
    // torch.lerp, which autocast leaves alone, refuses a bfloat16 end with a float32 start.
    const auto mixed = save_module("mixed_keep", torch::randn({latent, 48}),
                                   "return torch.sigmoid(torch.lerp(torch.zeros([x.size(0), 48]) + x.sum(1, keepdim=True), "
                                   "self.w[0], 0.5)).reshape([-1, 3, 4, 4])");
    torchscript_generator m(mixed, standard_normal(latent));
    m.keep_only(precision::bf16);
    CHECK(m.module().attr("w").toTensor().scalar_type() == torch::kFloat32);
    auto direct = torch::jit::load(mixed);
    tr0n::detail::precision_scope scope(precision::bf16, torch::kCPU);
    CHECK(torch::equal(m.forward(z, precision::bf16), direct.forward({z}).toTensor()));
  }
  SECTION("a copy of the adapter made before keeps the float32 module, and runs it") {
    torchscript_generator h(files().generator, standard_normal(latent));
    auto copy = h;
    c10::weak_intrusive_ptr<c10::ivalue::Object> h32(h.module()._ivalue());
    h.keep_only(precision::bf16);
    CHECK_FALSE(h32.expired());
    CHECK(torch::equal(copy.forward(z), torch::jit::load(files().generator).forward({z}).toTensor()));
  }
  SECTION("kept to fp32, the module stays and bf16 is refused") {
    torchscript_generator h(files().generator, standard_normal(latent));
    h.keep_only(precision::fp32);
    CHECK(torch::equal(h.forward(z), torch::jit::load(files().generator).forward({z}).toTensor()));
    CHECK_THROWS_WITH(h.forward(z, precision::bf16), Catch::Contains("kept to fp32"));
  }
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
  CHECK_THROWS_WITH(torchscript_encoder(save_fast_path_attention("fast_path"), g.example_output()),
                    Catch::Contains("fast_path.pt: the encoder cannot be differentiated") &&
                        Catch::Contains("aten::_native_multi_head_attention") &&
                        Catch::Contains("requires_grad_(True)") && Catch::Contains("torch.jit.script"));
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
