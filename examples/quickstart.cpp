// tr0n in one page: make an unconditional generator class-conditional with a
// classifier, zero-shot. The generator maps 2-D latents onto a spiral in the
// plane; the classifier says which of 6 angular sectors a point lies in.
//
//   quickstart [training-steps]     (default 2000)
#include <tr0n.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>

int main(int argc, char** argv) {
  const int64_t train_steps = argc > 1 ? std::atoll(argv[1]) : 2000;
  const int64_t classes = 6;
  torch::manual_seed(0);

  // G: z in R^2 -> a point on a spiral, a nonlinear map with a standard-normal prior.
  auto generator = tr0n::make_generator(
      [](const torch::Tensor& z) {
        auto r = 1.0 + 0.5 * torch::tanh(z.select(1, 1));
        auto angle = std::numbers::pi * torch::tanh(z.select(1, 0));
        return torch::stack({r * torch::cos(angle), r * torch::sin(angle)}, 1);
      },
      tr0n::standard_normal(2));

  // f: logits of the angular sector of a point (a fixed, differentiable "classifier").
  auto centres = torch::arange(classes).to(torch::kFloat32) * (2 * std::numbers::pi / classes) - std::numbers::pi +
                 std::numbers::pi / classes;
  auto directions = torch::stack({torch::cos(centres), torch::sin(centres)}, 1);  // [6, 2]
  auto classifier = tr0n::make_encoder(
      [directions](const torch::Tensor& x) { return 8.0 * torch::matmul(x, directions.t()); }, classes);

  // q(z | c): a 4-component mixture translator, trained on (z, softmax(f(G(z)))) only.
  // Its conditions are class probabilities: it applies the softmax to f's logits itself.
  tr0n::mixture_translator translator(
      tr0n::mixture_translator_options(classes, 2).components(4).transform(tr0n::condition_transform::softmax));
  auto report = tr0n::train_translator(translator, generator, classifier,
                                       tr0n::translator_training_options().steps(train_steps).lr(3e-3).seed(1),
                                       tr0n::progress_bar("translator").every(100));
  std::printf("translator NLL after %lld steps: %.3f, std %.3f to %.3f\n", static_cast<long long>(report.steps_done),
              report.nll(), report.std_min, report.std_max);

  // Sample 64 points per class: translator start, then 20 Langevin steps on the cross-entropy.
  auto conditions = tr0n::one_hot_conditions(torch::arange(classes), classes);
  tr0n::sampler sampler(generator, classifier, tr0n::cross_entropy{}, translator,
                        tr0n::sampler_options().steps(20).seed(2), tr0n::init::translator_sample{},
                        tr0n::cosine_decay{.eta0 = 0.05, .eta_min = 0.005}, tr0n::fixed_noise{.std = 0.01});
  auto result = sampler.sample(conditions, 64, tr0n::progress_bar("sampling"));

  // How often the classifier agrees with the requested class.
  auto requested = torch::arange(classes).repeat_interleave(64);
  auto predicted = classifier.forward(result.x).argmax(1);
  const double accuracy = (predicted == requested).to(torch::kFloat64).mean().item<double>();
  std::printf("samples: %lld, ok: %lld, mean energy %.3f, accuracy %.3f\n",
              static_cast<long long>(result.z.size(0)), static_cast<long long>(result.ok.sum().item<int64_t>()),
              result.energy.mean().item<double>(), accuracy);
  return accuracy > 0.9 ? EXIT_SUCCESS : EXIT_FAILURE;
}
