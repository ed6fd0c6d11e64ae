// tr0n: the command-line tool, for users who do not write C++.
//
// `tr0n --help` and `tr0n SUBCOMMAND --help` list every flag with its default;
// this is the map. Flags come in groups, each declared once (cli/flags.hpp):
//
//   common    (train, sample, serve)  --generator G.pt --encoder F.pt --latent-dim D --prior SPEC --image-shape C,H,W
//                                     --generator-range LO:HI --encoder-size N --encoder-normalize clip|imagenet|none
//                                     --device D --threads N --seed S --precision P --dist-backend B --dist-timeout S
//   models    (sample, serve)         --translator q.pt --text-encoder T.pt --vocabulary V.txt
//   sampling  (sample, serve)         --init START --steps T --energy E --augment N --step-size E --noise-std S
//                                     --momentum M --grad-clip G --score-head H.pt --score-weight W --score-input I
//
//   tr0n train  [common] --latent-dim D --condition-transform softmax|l2|none --out q.pt
//               and the training: --feature-noise S [--adaptive-noise] | --noise-cosine R | --condition-noise S,
//               --mixtures --hidden --steps --batch --lr, --checkpoint --checkpoint-every --resume
//   tr0n sample [common] [models] [sampling] --out samples.pt and one source of conditions:
//               --labels 0,1,.. | --conditions C.pt | --condition-image A.png [B.png --interpolate K] | --prompt TEXT;
//               --condition-transform, --samples-per-condition, --max-batch, --memory-budget
//   tr0n serve  [common] [models] [sampling] and the server: --host --port --allow-host --max-n --max-steps --queue
//               --workers --timeout --max-body --max-connections --request-deadline --invert
//
// START is one vocabulary everywhere (--init and the API's "init"): prior, translator_sample, translator_mode,
// translator_mixture, best_of:N, tr0n (translator_sample) or translator (translator_sample, no steps).
// Models are TorchScript files; conditions and samples are tensor files that
// Python reads and writes with torch.load / torch.save. Bad flags, missing
// files and shape mismatches exit with status 2 and one line on stderr.
#include "cli/sample.hpp"
#include "cli/train.hpp"
#ifdef TR0N_WITH_SERVE
#include "cli/serve.hpp"
#endif

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"tr0n: zero-shot plug-and-play conditional generation (TR0N) with TorchScript models"};
  app.require_subcommand(1);
  tr0n_cli::common_flags common;
  tr0n_cli::train_flags train;
  tr0n_cli::sample_flags sample;
  auto* train_cmd = tr0n_cli::add_train(app, common, train);
  auto* sample_cmd = tr0n_cli::add_sample(app, common, sample);
#ifdef TR0N_WITH_SERVE
  tr0n_cli::serve_flags serve;
  tr0n_cli::add_serve(app, common, serve);
#else
  app.add_subcommand("serve", "Serve a web page and a JSON API (this build has no cpp-httplib)")
      ->allow_extras()
      ->callback([] { throw CLI::ValidationError("tr0n serve", "this build has no cpp-httplib (libcpp-httplib-dev)"); });
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tr0n: %s (see --help)\n", e.what());
    return 2;
  }
  try {
    if (*train_cmd) return tr0n_cli::run_train(common, train);
    if (*sample_cmd) return tr0n_cli::run_sample(common, sample);
#ifdef TR0N_WITH_SERVE
    return tr0n_cli::run_serve(common, serve);
#else
    return 2;
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", tr0n::error_line(e).c_str());
    return 2;
  }
}
