#pragma once
// `tr0n serve`: a web page and a JSON API where a prompt (or a condition)
// becomes images. Models load once; requests go through a bounded queue to
// the sampling threads (`--workers`, default one per core, each running its
// sampler single-threaded: on 2 cores that answered 60 requests/s against 35
// for one sampler with 2 threads), so a full queue answers 503 at once and
// health checks never wait behind sampling.
#include "core.hpp"
#include "setup.hpp"
#include "http_guard.hpp"
#include "serve_page.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <stb_image_write.h>

#include <atomic>
#include <cfloat>
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
  model_flags models;
  sampling_flags sampling;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> allow_hosts;
  int64_t max_n = 64, max_steps = 200, queue = 8, workers = 0, max_connections = 128;
  size_t max_body = 64 * 1024;
  double timeout = 30, deadline = 10;
  bool invert = false;
};

inline CLI::App* add_serve(CLI::App& app, common_flags& common, serve_flags& f) {
  auto* cmd = app.add_subcommand("serve", "Serve a web page and a JSON API that sample images for prompts");
  add_common(cmd, common, false);
  add_models(cmd, f.models);
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
  cmd->add_option("--max-connections", f.max_connections,
                  "Connections open at once, each with its thread; more are answered 503 at once")
      ->check(CLI::Range(4, 4096))
      ->capture_default_str();
  cmd->add_option("--request-deadline", f.deadline,
                  "Seconds a client has to send a whole request (line, headers and body); slower ones are dropped")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  cmd->add_option("--allow-host", f.allow_hosts,
                  "Another name the server is reached by, as browsers send it in Host (repeatable); requests for "
                  "other names are refused (403), against DNS rebinding");
  add_sampling(cmd, f.sampling, "a request's start when it names none (default: tr0n with a translator, else prior)",
               "Langevin steps a request runs when it says none (at most --max-steps)");
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
  torch::Tensor tokens;     ///< the prompt's token ids [1, L], checked at parse
  torch::Tensor condition;  ///< [1, C], checked against the energy at parse
  int64_t n = 8, steps = 10;
  start_choice start;  ///< its word as the client named it (echoed)
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

/// The JSON text of `j`; bytes that are not UTF-8 (quoted from a client) are replaced, never thrown on.
inline std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

/// What a request may ask, fixed when the server starts.
struct request_rules {
  int64_t max_n, max_steps, default_steps, condition_dim;
  bool has_translator;
  std::string default_init;
  const std::optional<text_tower>* text;
  const cli_energy* energy;
};

/// "init": a word of the tool's one vocabulary of starts (core.hpp).
inline void parse_init(const json& doc, const request_rules& rules, request& r) {
  if (doc.contains("init") && !doc["init"].is_string())
    throw http_error(400, std::string("init: expected a string: ") + init_words);
  const auto word = doc.contains("init") ? doc["init"].get<std::string>() : rules.default_init;
  try {
    r.start = start_choice::parse(word, rules.has_translator, "init",
                                  "a translator, which this server has not: use \"prior\"");
  } catch (const std::invalid_argument& e) {
    throw http_error(400, tr0n::error_line(e));
  }
  if (r.start.no_steps) r.steps = 0;
}

/// "prompt" or "conditions" into the request's condition, checked as the energy checks it.
inline void parse_condition(const json& doc, const request_rules& rules, request& r) {
  const bool has_prompt = doc.contains("prompt"), has_conditions = doc.contains("conditions");
  if (has_prompt == has_conditions) throw http_error(400, "give exactly one of \"prompt\" and \"conditions\"");
  if (has_prompt) {
    if (!doc["prompt"].is_string()) throw http_error(400, "prompt: expected a string");
    if (!*rules.text) throw http_error(400, "prompt: this server has no text encoder; send \"conditions\"");
    r.prompt = doc["prompt"].get<std::string>();
    try {
      r.tokens = (*rules.text)->tokens.encode({*r.prompt});
    } catch (const tr0n::unknown_word_error& e) {
      throw http_error(400, "prompt: unknown word '" + e.word() + "' (not in the vocabulary)");
    } catch (const std::exception& e) {
      throw http_error(400, std::string("prompt: ") + tr0n::error_line(e));
    }
    return;
  }
  const auto& c = doc["conditions"];
  if (!c.is_array() || static_cast<int64_t>(c.size()) != rules.condition_dim)
    throw http_error(400, "conditions: expected an array of " + std::to_string(rules.condition_dim) + " numbers");
  std::vector<float> values;
  for (const auto& v : c) {
    // Finite as a float, not only as a double: 1e300 would become inf.
    if (!v.is_number() || !(std::abs(v.get<double>()) <= FLT_MAX))
      throw http_error(400, "conditions: expected finite numbers within a float's range (|x| <= 3.4e38)");
    values.push_back(v.get<float>());
  }
  r.condition = torch::tensor(values).view({1, rules.condition_dim});
  try {
    rules.energy->check_conditions(r.condition, "conditions");
  } catch (const std::invalid_argument& e) {
    throw http_error(400, tr0n::error_line(e));
  }
}

/// Parses and checks a request body; every problem is a 400 that names the field.
inline request parse_request(const std::string& body, const request_rules& rules) {
  if (!http::valid_utf8(body)) throw http_error(400, "the body is not UTF-8 text");
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::exception& e) {
    throw http_error(400, std::string("bad JSON: ") + e.what());
  }
  if (!doc.is_object()) throw http_error(400, "expected a JSON object");
  request r;
  r.steps = rules.default_steps;
  auto integer = [&](const char* key, int64_t lo, int64_t hi, int64_t& out) {
    if (!doc.contains(key)) return;
    const auto& v = doc[key];
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      throw http_error(400, std::string(key) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
    out = v.get<int64_t>();
  };
  integer("n", 1, rules.max_n, r.n);
  integer("steps", 0, rules.max_steps, r.steps);
  if (doc.contains("seed")) {
    if (!doc["seed"].is_number_unsigned()) throw http_error(400, "seed: expected a non-negative integer");
    r.seed = doc["seed"].get<uint64_t>();
  }
  parse_init(doc, rules, r);
  parse_condition(doc, rules, r);
  return r;
}

/// Numbers for JSON: non-finite ones (JSON has no NaN) become null.
inline json finite_list(const torch::Tensor& t) {
  auto v = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  json out = json::array();
  for (int64_t i = 0; i < v.numel(); ++i) {
    const double x = v.data_ptr<double>()[i];
    out.push_back(std::isfinite(x) ? json(x) : json(nullptr));
  }
  return out;
}

/// A sampling run's answer: images, energies, flags and the mean energy per step.
inline json answer(const request& r, const tr0n::sample_result& res, const std::vector<int64_t>& image_shape,
                   bool invert, double seconds) {
  json images = json::array();
  const auto x = as_images(res.x, image_shape);
  for (int64_t i = 0; i < x.size(0); ++i) images.push_back(png_data_url(x[i], invert));
  const auto ok = res.ok.to(torch::kCPU);
  // Mean energy per step over the chains that stayed finite; NaN (null) where none did.
  const auto good = torch::isfinite(res.trace) & res.ok.unsqueeze(0);
  const auto trace = torch::where(good, res.trace, torch::zeros_like(res.trace)).sum(1) / good.sum(1);
  json out{{"images", images},
           {"energy", finite_list(res.energy)},
           {"ok", std::vector<bool>(ok.data_ptr<bool>(), ok.data_ptr<bool>() + ok.numel())},
           {"trace", finite_list(trace)},
           {"init", r.start.word},
           {"steps", r.steps},
           {"n", r.n},
           {"seed", r.seed},
           {"seconds", seconds}};
  if (r.prompt) out["prompt"] = *r.prompt;
  return out;
}

}  // namespace serve_detail

namespace serve_detail {

/// One request on a sampling thread: the condition, the sampler for its start, the answer.
inline json run_request(const request& r, loaded_models& m, const cli_energy& energy,
                 std::optional<tr0n::mixture_translator>& q, std::optional<text_tower>& text,
                 const serve_flags& f, const std::vector<int64_t>& image_shape, const std::atomic<bool>& abandoned) {
  const auto start = std::chrono::steady_clock::now();
  const auto device = m.example.device();
  torch::Tensor c;
  if (r.prompt) {
    const auto space = q ? (*q)->transform() : tr0n::condition_transform::none;
    c = tr0n::features_to_conditions(space, text->encoder.encode(r.tokens)).to(torch::kFloat32);
  } else {
    c = r.condition.to(device);
  }
  const auto opts = sampler_options_for(f.sampling, r.steps, r.seed, m.prior()).record_trace(true);
  const abandon_check check{abandoned};
  const auto res = with_sampler(r.start, m.generator, m.encoder, energy, q, opts, f.sampling,
                                [&](auto& s) { return s.sample(c, r.n, check); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return answer(r, res, image_shape, f.invert, seconds);
}

/// The sampling threads: each takes jobs from the bounded queue and answers them.
class sampling_pool {
 public:
  template <class Sample>
  sampling_pool(size_t capacity, int64_t workers, Sample sample) : queue_(capacity) {
    for (int64_t i = 0; i < workers; ++i)
      threads_.emplace_back([this, sample] {
        while (auto j = queue_.pop()) answer_job(*j, sample);
      });
  }
  ~sampling_pool() { stop(); }
  void stop() {
    queue_.close();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  job_queue& queue() { return queue_; }

 private:
  template <class Sample>
  static void answer_job(job& j, const Sample& sample) {
    if (j.abandoned.load()) return j.answer.set_value({504, json{{"error", "timed out in the queue"}}});
    try {
      j.answer.set_value({200, sample(j.req, j.abandoned)});
    } catch (const std::exception& e) {  // a server fault: logged here, never sent
      std::fprintf(stderr, "tr0n serve: a request failed: %s\n", tr0n::error_line(e).c_str());
      j.answer.set_value({500, json{{"error", "sampling failed: a server fault (see the server's log)"}}});
    }
  }
  job_queue queue_;
  std::vector<std::thread> threads_;
};

inline void send(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

/// Before routing, refuse what the policy refuses (`policy` is set once the port is known); after,
/// answer errors and exceptions with JSON that carries no exception text.
inline void add_guards(httplib::Server& server, const std::optional<http::request_policy>& policy) {
  server.set_default_headers(http::security_headers());
  server.set_pre_routing_handler([&policy](const httplib::Request& req, httplib::Response& res) {
    if (const auto refused = policy->check(req)) {
      send(res, refused->status, json{{"error", refused->message}});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const char* what = res.status == 413 ? "request body too large"
                       : res.status == 404 ? "not found"
                       : res.status == 405 ? "method not allowed"
                                           : "bad request";
    send(res, res.status, json{{"error", what}});
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tr0n serve: a handler failed: %s\n", tr0n::error_line(e).c_str());
    } catch (...) {
      std::fprintf(stderr, "tr0n serve: a handler failed\n");
    }
    send(res, 500, json{{"error", "a server fault (see the server's log)"}});
  });
}

/// The page and its assets, /healthz, /api/info and /api/sample.
inline void add_routes(httplib::Server& server, job_queue& queue, const request_rules& rules, const json& info,
                       double timeout) {
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(serve_page, "text/html; charset=utf-8");
  });
  server.Get("/app.css", [](const httplib::Request&, httplib::Response& res) { res.set_content(serve_style, "text/css"); });
  server.Get("/app.js", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(serve_script, "text/javascript");
  });
  server.Get("/healthz", [&queue, max = info["queue"]](const httplib::Request&, httplib::Response& res) {
    send(res, 200, json{{"status", "ok"}, {"queued", queue.size()}, {"queue", max}});
  });
  server.Get("/api/info", [info](const httplib::Request&, httplib::Response& res) { send(res, 200, info); });
  server.Post("/api/sample", [&queue, &rules, timeout](const httplib::Request& req, httplib::Response& res) {
    try {
      auto j = std::make_shared<job>();
      j->req = parse_request(req.body, rules);
      auto answer = j->answer.get_future();
      if (stop_requested.load() || !queue.try_push(j)) {
        res.set_header("Retry-After", "1");
        return send(res, 503, json{{"error", "busy: the queue is full, try again shortly"}});
      }
      if (answer.wait_for(std::chrono::duration<double>(timeout)) != std::future_status::ready) {
        j->abandoned.store(true);
        return send(res, 504, json{{"error", "timed out after " + std::to_string(timeout) + " s"}});
      }
      auto [status, body] = answer.get();
      send(res, status, body);
    } catch (const http_error& e) {
      send(res, e.status, json{{"error", e.what()}});
    }
  });
}

/// Binds `host:port` (0: any free port) and returns the port, or fails with one line.
inline int bind_server(httplib::Server& server, const std::string& host, int port) {
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a
  // second server share a port already in use instead of failing.
  socket_t listening = INVALID_SOCKET;
  server.set_socket_options([&listening](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listening = sock;
  });
  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) tr0n::fail("serve: cannot listen on ", host, ":", port, " (in use, or not an address here)");
  // httplib listens with a backlog of 5: a burst of clients overflows it and
  // some connections stall or fail. listen() again raises it.
  if (listening != INVALID_SOCKET) ::listen(listening, SOMAXCONN);
  return bound;
}

/// Renders G's example output as the server will, so that a shape it cannot
/// draw stops it at start-up (one line naming the shape and --image-shape).
inline void check_drawable(const torch::Tensor& example, const std::vector<int64_t>& image_shape) {
  png_data_url(as_images(example.narrow(0, 0, 1), image_shape)[0], false);
}

/// Serves until SIGINT or SIGTERM; returns once the requests in flight are answered.
inline void serve_until_stopped(httplib::Server& server) {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  std::thread watcher([&] {
    while (!stop_requested.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    server.stop();
  });
  server.listen_after_bind();
  stop_requested.store(true);
  watcher.join();
}

}  // namespace serve_detail

namespace serve_detail {

/// Requests are small: whole samplers in parallel beat threads inside one.
/// `--workers 0` is one per thread, and each sampler gets its share of them.
inline run_setup start_workers(const common_flags& common, serve_flags& f) {
  auto setup = run_setup::start(common);
  const int total =
      common.threads > 0 ? common.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (f.workers == 0) f.workers = std::min(total, 16);
  setup.threads = tr0n::configure_threads(std::max<int>(1, total / static_cast<int>(f.workers)),
                                         tr0n::workload_for(setup.precision, setup.device));
  f.sampling.precision = setup.precision;
  return setup;
}

/// What the server loads once: the models, the energy, and what a request may ask.
struct served {
  std::optional<tr0n::mixture_translator> q;
  loaded_models models;
  std::optional<text_tower> text;
  cli_energy energy;
  request_rules rules;

  static std::unique_ptr<served> load(const common_flags& common, serve_flags& f, torch::Device device) {
    auto [q, latent_dim] = load_translator(f.models.translator, common.latent_dim, device);
    resolve_energy(f.sampling, q ? std::optional((*q)->transform()) : std::nullopt);
    if (f.sampling.init.empty()) f.sampling.init = q ? "tr0n" : "prior";
    start_choice::parse(f.sampling.init, q.has_value(), "--init");
    if (f.sampling.steps > f.max_steps)
      tr0n::fail("--steps ", f.sampling.steps, ": more than --max-steps ", f.max_steps);
    auto m = loaded_models::load(common, latent_dim, device);
    step_scale_for(f.sampling, m.prior());  // a wrong --step-scale fails at start-up, not per request
    check_drawable(m.example, common.image_shape);
    const int64_t condition_dim = q ? (*q)->condition_dim() : m.encoder.condition_dim();
    std::optional<text_tower> text;
    if (!f.models.text_encoder.empty()) text = text_tower::load(f.models, device, condition_dim);
    auto energy = make_energy(f.sampling, m, device);
    auto out = std::unique_ptr<served>(
        new served{std::move(q), std::move(m), std::move(text), std::move(energy), {}});
    out->rules = {f.max_n,         f.max_steps, f.sampling.steps, condition_dim, out->q.has_value(),
                  f.sampling.init, &out->text,  &out->energy};
    return out;
  }

  /// /api/info: what the page needs to know.
  json info(const serve_flags& f) const {
    return json{{"translator", q.has_value()}, {"text", text.has_value()},   {"condition_dim", rules.condition_dim},
                {"max_n", f.max_n},            {"max_steps", f.max_steps},  {"init", rules.default_init},
                {"steps", rules.default_steps}, {"energy", f.sampling.energy}, {"queue", f.queue}};
  }
};

inline http::limits limits_of(const serve_flags& f) {
  http::limits limits;
  limits.max_body = f.max_body;
  limits.max_connections = static_cast<size_t>(f.max_connections);
  limits.deadline = std::chrono::milliseconds(static_cast<int64_t>(f.deadline * 1000));
  return limits;
}

/// The start-up line, a warning when others can reach the server, and its URL on stdout.
inline void announce(const run_setup& setup, const common_flags& common, const serve_flags& f, int port) {
  char details[320];
  std::snprintf(details, sizeof details,
                "energy %s, step %g, noise %g, %lld sampling workers, queue %lld, timeout %g s, at most %lld samples "
                "and %lld steps a request, %lld connections, %g s to send a request",
                f.sampling.energy.c_str(), f.sampling.step(), f.sampling.noise_std, static_cast<long long>(f.workers),
                static_cast<long long>(f.queue), f.timeout, static_cast<long long>(f.max_n),
                static_cast<long long>(f.max_steps), static_cast<long long>(f.max_connections), f.deadline);
  setup.announce("serve", common, details);
  if (f.host != "127.0.0.1" && f.host != "localhost" && f.host != "::1")
    std::fprintf(stderr, "warning: listening on %s: anyone who can reach this machine can use the server\n",
                 f.host.c_str());
  const auto host = f.host.find(':') != std::string::npos ? "[" + f.host + "]" : f.host;
  std::printf("listening on http://%s:%d/\n", host.c_str(), port);
  std::fflush(stdout);
}

}  // namespace serve_detail

inline int run_serve(const common_flags& common, serve_flags f) {
  const auto setup = serve_detail::start_workers(common, f);
  const auto s = serve_detail::served::load(common, f, setup.device);
  serve_detail::sampling_pool pool(static_cast<size_t>(f.queue), f.workers,
                                   [&](const serve_detail::request& r, const std::atomic<bool>& abandoned) {
                                     return serve_detail::run_request(r, s->models, s->energy, s->q, s->text, f,
                                                                      common.image_shape, abandoned);
                                   });
  const auto limits = serve_detail::limits_of(f);
  http::guarded_server server(limits);
  std::optional<http::request_policy> policy;
  serve_detail::add_guards(server, policy);
  serve_detail::add_routes(server, pool.queue(), s->rules, s->info(f), f.timeout);
  const int port = serve_detail::bind_server(server, f.host, f.port);
  policy.emplace(f.host, port, f.allow_hosts, limits);
  serve_detail::announce(setup, common, f, port);
  serve_detail::serve_until_stopped(server);
  pool.stop();
  std::fprintf(stderr, "tr0n serve: stopped\n");
  return 0;
}

}  // namespace tr0n_cli
