// tr0n: the command-line tool, for users who do not write C++. `tr0n --help`
// and `tr0n SUBCOMMAND --help` list every flag with its default; in short:
//
//   tr0n train  --generator G.pt --encoder F.pt --latent-dim D --condition-transform softmax|l2|none --out q.pt
//               [--prior normal|truncated:R|uniform[:LO:HI]] [--condition-noise S] [--mixtures K] [--steps N]
//               [--hidden H] [--batch B] [--lr LR] [--checkpoint F] [--checkpoint-every K] [--resume] [common flags]
//   tr0n sample --generator G.pt --encoder F.pt --out samples.pt
//               (--labels 0,1,.. | --conditions C.pt | --condition-image A.png [--condition-image B.png --interpolate K]
//                | --text-encoder T.pt --prompt "a dark sandal" [--prompt ...] [--vocabulary V.txt])
//               [--translator q.pt] [--init prior|translator_sample|translator_mode|translator_mixture|best_of:N]
//               [--energy cross_entropy|neg_cosine|squared (default: from the translator)] [--steps T]
//               [--step-size E] [--noise-std S] [--momentum M] [--grad-clip G] [--augment N]
//               [--samples-per-condition n] [--max-batch B] [--memory-budget MIB] [common flags]
//   tr0n serve  --generator G.pt --encoder F.pt [--translator q.pt] [--text-encoder T.pt] [--energy E]
//               [--host 127.0.0.1] [--port 8080] [--allow-host NAME] [--max-n 64] [--max-steps 200] [--queue 8]
//               [--workers N] [--timeout 30] [--max-body BYTES] [--max-connections 128] [--request-deadline 10]
//               [--invert] [sampling flags as for sample] [common flags]
//   common flags: [--prior SPEC] [--image-shape C,H,W] [--threads N] [--device D] [--seed S]
//                 [--precision auto|fp32|bf16|fp16]
//                 [--dist-backend gloo|nccl] [--dist-timeout S]
//
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
    std::fprintf(stderr, "%s\n", tr0n::detail::brief(e).c_str());
    return 2;
  }
}
