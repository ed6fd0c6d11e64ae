// Callbacks: observing, recording and stopping runs; the progress bar.
#include "support/toy_models.hpp"
#include "support/problems.hpp"

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

TEST_CASE("callbacks observe, record and stop runs", "[sampler][callbacks]") {
  auto& p = problem();
  sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(50).seed(1), init::translator_sample{},
            constant_step{1e-6}, no_noise{});
  value_trace trace;
  early_stopping stop(3, 1.0);  // the energy moves far less than 1.0 per step
  std::FILE* sink = std::tmpfile();
  progress_bar bar("test", sink);
  auto r = s.sample(p.conditions(), 2, trace, stop, bar);
  CHECK(r.steps_run == 4);  // the first step sets the best, three stale ones stop
  CHECK(trace.values().size() == 4);
  std::fseek(sink, 0, SEEK_END);
  CHECK(std::ftell(sink) > 0);
  std::fclose(sink);

  value_trace losses;
  mixture_translator q(mixture_translator_options(p.classes, p.d));
  auto report = train_translator(q, p.g, p.f, translator_training_options().steps(7).batch_size(16), losses);
  CHECK(report.steps_done == 7);
  CHECK(losses.values().size() == 7);
  CHECK(report.losses[6].item<double>() == Approx(losses.values()[6]));
}

TEST_CASE("a progress bar redraws with carriage returns only on a terminal, and logs a line per tenth elsewhere",
          "[callbacks][faults]") {
  auto& p = problem();
  sampler s(p.g, p.f, cross_entropy{}, p.q, sampler_options().steps(37).seed(1));
  auto text_of = [](std::FILE* f) {
    std::fflush(f);
    std::string out(static_cast<size_t>(std::ftell(f)), '\0');
    std::rewind(f);
    out.resize(std::fread(out.data(), 1, out.size(), f));
    std::fclose(f);
    return out;
  };
  std::FILE* log = std::tmpfile();  // a file: not a terminal
  progress_bar bar("sampling", log);
  CHECK_FALSE(bar.terminal());
  s.sample(p.conditions(), 2, bar);
  const auto logged = text_of(log);
  CHECK(logged.find('\r') == std::string::npos);
  CHECK(std::count(logged.begin(), logged.end(), '\n') == 10);  // 10%, 20%, ..., 100%
  CHECK(logged.find("sampling  10% 4/37") != std::string::npos);
  CHECK(logged.find("sampling 100% 37/37") != std::string::npos);

  std::FILE* tty = std::tmpfile();
  progress_bar forced("sampling", tty);
  forced.terminal(true);
  s.sample(p.conditions(), 2, forced);
  const auto drawn = text_of(tty);
  CHECK(std::count(drawn.begin(), drawn.end(), '\r') == 39);  // the start, every step and the end
  CHECK(std::count(drawn.begin(), drawn.end(), '\n') == 1);
}
