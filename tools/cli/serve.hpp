#pragma once
// `tr0n serve`: a web page and a JSON API where a prompt (or a condition)
// becomes images. Models load once; requests go through a bounded queue to
// the sampling threads (`--workers`, default one per core, each running its
// sampler single-threaded: on 2 cores that answered 60 requests/s against 35
// for one sampler with 2 threads), so a full queue answers 503 at once and
// health checks never wait behind sampling.
#include "common.hpp"
#include "serve_page.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <stb_image_write.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tr0n_cli {

struct serve_flags {
  std::string translator, text_encoder, vocabulary, host = "127.0.0.1";
  int port = 8080;
  int64_t max_n = 64, max_steps = 200, queue = 8, workers = 0;
  size_t max_body = 64 * 1024;
  double timeout = 30;
  dynamics_flags dyn;
  bool invert = false;
};

inline CLI::App* add_serve(CLI::App& app, common_flags& common, serve_flags& f) {
  auto* cmd = app.add_subcommand("serve", "Serve a web page and a JSON API that sample images for prompts");
  add_common(cmd, common, false);
  cmd->add_option("--translator", f.translator, "Translator written by `tr0n train` (without: prior start only)");
  auto* text = cmd->add_option("--text-encoder", f.text_encoder, "TorchScript text tower, for prompts");
  cmd->add_option("--vocabulary", f.vocabulary, "Vocabulary file (default: the text tower's own)")->needs(text);
  cmd->add_option("--host", f.host, "Address to listen on (loopback by default)")->capture_default_str();
  cmd->add_option("--port", f.port, "Port (0: any free port; the URL is printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--max-n", f.max_n, "Most samples per request")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--max-steps", f.max_steps, "Most Langevin steps per request")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--queue", f.queue, "Requests waiting at most; more are answered 503")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--workers", f.workers,
                  "Sampling threads, each with --threads / workers compute threads (0: one per thread)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd->add_option("--timeout", f.timeout, "Seconds a request may wait and run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-body", f.max_body, "Largest request body in bytes (larger: 413)")
      ->check(CLI::Range(size_t{64}, size_t{1} << 30))
      ->capture_default_str();
  add_dynamics(cmd, f.dyn);
  cmd->add_flag("--invert", f.invert, "Show images as 1 - x (ink on white, like tr0n's grids)");
  return cmd;
}

namespace serve_detail {

using json = nlohmann::json;

/// A request error: its HTTP status and message.
struct http_error : std::runtime_error {
  int status;
  http_error(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};

inline std::string base64(const std::string& bytes) {
  static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(digits[(v >> s) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(digits[(v >> 18) & 63]);
    out.push_back(digits[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? digits[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

/// One image [C, H, W] in [0, 1] (C = 1 or 3) as a PNG data URL.
inline std::string png_data_url(const torch::Tensor& image, bool invert) {
  auto x = image.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1);
  if (invert) x = 1 - x;
  auto pixels = (x * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  std::string bytes;
  const int h = static_cast<int>(pixels.size(0)), w = static_cast<int>(pixels.size(1));
  const int c = static_cast<int>(pixels.size(2));
  stbi_write_png_to_func([](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); },
                         &bytes, w, h, c, pixels.data_ptr<uint8_t>(), w * c);
  return "data:image/png;base64," + base64(bytes);
}

/// A validated request: one condition, n samples.
struct request {
  std::optional<std::string> prompt;
  torch::Tensor tokens;  ///< the prompt's token ids [1, L], checked at parse
  std::vector<float> condition;
  int64_t n = 8, steps = 10;
  std::string init;
  uint64_t seed = 0;
};

/// A queued request and the promise of its answer (status, JSON body).
struct job {
  request req;
  std::promise<std::pair<int, json>> answer;
  std::atomic<bool> abandoned{false};
};

/// A bounded queue of jobs with one consumer.
class job_queue {
 public:
  explicit job_queue(size_t capacity) : capacity_(capacity) {}
  bool try_push(std::shared_ptr<job> j) {
    std::lock_guard lock(mutex_);
    if (closed_ || jobs_.size() >= capacity_) return false;
    jobs_.push_back(std::move(j));
    ready_.notify_one();
    return true;
  }
  /// The next job, or null once closed and empty.
  std::shared_ptr<job> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return closed_ || !jobs_.empty(); });
    if (jobs_.empty()) return nullptr;
    auto j = std::move(jobs_.front());
    jobs_.pop_front();
    return j;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    ready_.notify_all();
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<job>> jobs_;
  size_t capacity_;
  bool closed_ = false;
};

/// Stops a sampling run whose request was abandoned (it timed out): its
/// answer would go nowhere, and it must not hold a worker or a clean stop.
struct abandon_check {
  const std::atomic<bool>& abandoned;
  bool on_step(const tr0n::step_info&) const { return abandoned.load(std::memory_order_relaxed); }
};

inline std::atomic<bool> stop_requested{false};
extern "C" inline void on_stop_signal(int) { stop_requested.store(true); }

}  // namespace serve_detail

inline int run_serve(const common_flags& common, serve_flags f) {
  using serve_detail::http_error;
  using serve_detail::json;
  auto setup = run_setup::start(common);
  // Requests are small: whole samplers in parallel beat threads inside one.
  const int total = common.threads > 0 ? common.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (f.workers == 0) f.workers = std::min(total, 16);
  setup.threads = tr0n::configure_threads(std::max<int>(1, total / static_cast<int>(f.workers)));
  const auto device = setup.device;
  auto [q, latent_dim] = load_translator(f.translator, common.latent_dim, device);
  std::optional<tr0n::condition_transform> space;
  if (q) space = (*q)->transform();
  auto prior = cli_prior::parse(common.prior, latent_dim);
  const auto options = tr0n::torchscript_options().device(device);
  tr0n::torchscript_generator generator(common.generator, prior, options);
  tr0n::torchscript_encoder encoder(common.encoder, generator.example_output(), options);
  const int64_t condition_dim = q ? (*q)->condition_dim() : encoder.condition_dim();
  std::optional<text_tower> text;
  if (!f.text_encoder.empty()) {
    text = text_tower::load(f.text_encoder, f.vocabulary, options);
    if (text->encoder.condition_dim() != condition_dim)
      tr0n::detail::fail("--text-encoder: embeddings of width ", text->encoder.condition_dim(),
                         ", but conditions have width ", condition_dim);
  }
  const auto energy = cli_energy::parse(f.dyn.energy, f.dyn.augment);
  const std::string default_init = q ? "tr0n" : "prior";

  // Parses and checks a request body; every problem is a 400 that says what.
  auto parse = [&](const std::string& body) {
    json doc;
    try {
      doc = json::parse(body);
    } catch (const std::exception& e) {
      throw http_error(400, std::string("bad JSON: ") + e.what());
    }
    if (!doc.is_object()) throw http_error(400, "expected a JSON object");
    serve_detail::request r;
    r.init = default_init;
    auto integer = [&](const char* key, int64_t lo, int64_t hi, int64_t& out) {
      if (!doc.contains(key)) return;
      const auto& v = doc[key];
      if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
        throw http_error(400, std::string(key) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
      out = v.get<int64_t>();
    };
    integer("n", 1, f.max_n, r.n);
    integer("steps", 0, f.max_steps, r.steps);
    if (doc.contains("seed")) {
      if (!doc["seed"].is_number_unsigned()) throw http_error(400, "seed: expected a non-negative integer");
      r.seed = doc["seed"].get<uint64_t>();
    }
    if (doc.contains("init")) {
      if (!doc["init"].is_string()) throw http_error(400, "init: expected \"tr0n\", \"translator\" or \"prior\"");
      r.init = doc["init"].get<std::string>();
      if (r.init != "tr0n" && r.init != "translator" && r.init != "prior")
        throw http_error(400, "init: expected \"tr0n\", \"translator\" or \"prior\", got \"" + r.init + "\"");
      if (r.init != "prior" && !q) throw http_error(400, "init: this server has no translator; use \"prior\"");
    }
    const bool has_prompt = doc.contains("prompt"), has_conditions = doc.contains("conditions");
    if (has_prompt == has_conditions) throw http_error(400, "give exactly one of \"prompt\" and \"conditions\"");
    if (has_prompt) {
      if (!doc["prompt"].is_string()) throw http_error(400, "prompt: expected a string");
      if (!text) throw http_error(400, "prompt: this server has no text encoder; send \"conditions\"");
      const auto p = doc["prompt"].get<std::string>();
      try {
        r.tokens = text->tokens.encode({p});
      } catch (const tr0n::unknown_word_error& e) {
        throw http_error(400, "unknown word '" + e.word() + "' (not in the vocabulary)");
      } catch (const std::exception& e) {
        throw http_error(400, std::string("prompt: ") + tr0n::detail::brief(e));
      }
      r.prompt = p;
    } else {
      const auto& c = doc["conditions"];
      if (!c.is_array() || static_cast<int64_t>(c.size()) != condition_dim)
        throw http_error(400, "conditions: expected an array of " + std::to_string(condition_dim) + " numbers");
      for (const auto& v : c) {
        if (!v.is_number() || !std::isfinite(v.get<double>()))
          throw http_error(400, "conditions: expected finite numbers");
        r.condition.push_back(v.get<float>());
      }
    }
    return r;
  };

  // Runs one request on the sampling thread.
  const tr0n::constant_step schedule{f.dyn.step()};
  const tr0n::fixed_noise noise{f.dyn.noise_std};
  auto sample = [&](const serve_detail::request& r, const std::atomic<bool>& abandoned) -> json {
    const serve_detail::abandon_check check{abandoned};
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor c;
    if (r.prompt) {
      c = tr0n::features_to_conditions(space.value_or(tr0n::condition_transform::none), text->encoder.encode(r.tokens))
              .to(torch::kFloat32);
    } else {
      c = torch::tensor(r.condition).view({1, condition_dim}).to(device);
    }
    const int64_t steps = r.init == "translator" ? 0 : r.steps;
    auto opts = tr0n::sampler_options()
                    .steps(steps)
                    .momentum(f.dyn.momentum)
                    .grad_clip(f.dyn.grad_clip)
                    .seed(r.seed)
                    .record_trace(true);
    tr0n::sample_result res;
    if (r.init == "prior") {  // the prior start needs no translator, with or without one loaded
      tr0n::sampler s(generator, encoder, energy, opts, tr0n::init::prior{}, schedule, noise);
      res = s.sample(c, r.n, check);
    } else {
      tr0n::sampler s(generator, encoder, energy, *q, opts, tr0n::init::translator_sample{}, schedule, noise);
      res = s.sample(c, r.n, check);
    }
    json images = json::array();
    for (int64_t i = 0; i < res.x.size(0); ++i) images.push_back(serve_detail::png_data_url(res.x[i], f.invert));
    auto to_list = [](const torch::Tensor& t) {
      auto v = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
      return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
    };
    const auto ok = res.ok.to(torch::kCPU);
    std::vector<bool> ok_list(ok.data_ptr<bool>(), ok.data_ptr<bool>() + ok.numel());
    // Mean energy per step over the chains that stayed finite; NaN (null) where none did.
    const auto good = torch::isfinite(res.trace) & res.ok.unsqueeze(0);
    const auto trace = torch::where(good, res.trace, torch::zeros_like(res.trace)).sum(1) / good.sum(1);
    json out{{"images", images}, {"energy", to_list(res.energy)}, {"ok", ok_list}, {"trace", to_list(trace)},
             {"init", r.init}, {"steps", steps}, {"n", r.n}, {"seed", r.seed},
             {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
    if (r.prompt) out["prompt"] = *r.prompt;
    // JSON has no NaN: non-finite numbers become null.
    for (auto& e : out["energy"])
      if (!std::isfinite(e.get<double>())) e = nullptr;
    for (auto& e : out["trace"])
      if (!std::isfinite(e.get<double>())) e = nullptr;
    return out;
  };

  serve_detail::job_queue queue(static_cast<size_t>(f.queue));
  auto work = [&] {
    while (auto j = queue.pop()) {
      if (j->abandoned.load()) {
        j->answer.set_value({504, json{{"error", "timed out in the queue"}}});
        continue;
      }
      try {
        j->answer.set_value({200, sample(j->req, j->abandoned)});
      } catch (const std::exception& e) {
        j->answer.set_value({500, json{{"error", tr0n::detail::brief(e)}}});
      }
    }
  };
  std::vector<std::thread> workers;
  for (int64_t i = 0; i < f.workers; ++i) workers.emplace_back(work);
  auto join_workers = [&] {
    queue.close();
    for (auto& w : workers) w.join();
  };

  httplib::Server server;
  // Handler threads: one per queued request, one sampling, and spares for
  // health checks, the page and 503 answers.
  const auto handlers = static_cast<size_t>(f.queue + f.workers) + 5;
  server.new_task_queue = [handlers] { return new httplib::ThreadPool(handlers); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a
  // second server share a port already in use instead of failing.
  // The listening socket is kept to raise its backlog after the bind (see below).
  socket_t listening = INVALID_SOCKET;
  server.set_socket_options([&listening](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listening = sock;
  });
  server.set_payload_max_length(f.max_body);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  auto send = [](httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  };
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const char* what = res.status == 413 ? "request body too large" : res.status == 404 ? "not found" : "bad request";
    res.set_content(json{{"error", what}}.dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(serve_page, "text/html; charset=utf-8");
  });
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    send(res, 200, json{{"status", "ok"}, {"queued", queue.size()}, {"queue", f.queue}});
  });
  server.Get("/api/info", [&](const httplib::Request&, httplib::Response& res) {
    send(res, 200,
         json{{"translator", q.has_value()}, {"text", text.has_value()}, {"condition_dim", condition_dim},
              {"max_n", f.max_n}, {"max_steps", f.max_steps}, {"init", default_init}});
  });
  server.Post("/api/sample", [&](const httplib::Request& req, httplib::Response& res) {
    try {
      auto j = std::make_shared<serve_detail::job>();
      j->req = parse(req.body);
      auto answer = j->answer.get_future();
      if (serve_detail::stop_requested.load() || !queue.try_push(j)) {
        res.set_header("Retry-After", "1");
        return send(res, 503, json{{"error", "busy: the queue is full, try again shortly"}});
      }
      if (answer.wait_for(std::chrono::duration<double>(f.timeout)) != std::future_status::ready) {
        j->abandoned.store(true);
        return send(res, 504, json{{"error", "timed out after " + std::to_string(f.timeout) + " s"}});
      }
      auto [status, body] = answer.get();
      send(res, status, body);
    } catch (const http_error& e) {
      send(res, e.status, json{{"error", e.what()}});
    }
  });

  const int port = f.port == 0 ? server.bind_to_any_port(f.host) : (server.bind_to_port(f.host, f.port) ? f.port : -1);
  // httplib listens with a backlog of 5: a burst of clients overflows it and
  // some connections stall or fail. listen() again raises it.
  if (port >= 0 && listening != INVALID_SOCKET) ::listen(listening, SOMAXCONN);
  if (port < 0) {
    join_workers();
    tr0n::detail::fail("serve: cannot listen on ", f.host, ":", f.port, " (in use, or not an address here)");
  }
  char details[224];
  std::snprintf(details, sizeof details,
                "step %g, noise %g, %lld sampling workers, queue %lld, timeout %g s, at most %lld samples and %lld "
                "steps a request",
                f.dyn.step(), f.dyn.noise_std, static_cast<long long>(f.workers), static_cast<long long>(f.queue),
                f.timeout,
                static_cast<long long>(f.max_n),
                static_cast<long long>(f.max_steps));
  setup.announce("serve", common, details);
  if (f.host != "127.0.0.1" && f.host != "localhost" && f.host != "::1")
    std::fprintf(stderr, "warning: listening on %s: anyone who can reach this machine can use the server\n",
                 f.host.c_str());
  std::printf("listening on http://%s:%d/\n", f.host.c_str(), port);
  std::fflush(stdout);

  std::signal(SIGINT, serve_detail::on_stop_signal);
  std::signal(SIGTERM, serve_detail::on_stop_signal);
  std::thread watcher([&] {
    while (!serve_detail::stop_requested.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    server.stop();
  });
  server.listen_after_bind();  // returns after stop(), once the requests in flight are answered
  serve_detail::stop_requested.store(true);
  watcher.join();
  join_workers();
  std::fprintf(stderr, "tr0n serve: stopped\n");
  return 0;
}

}  // namespace tr0n_cli
