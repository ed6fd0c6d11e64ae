// `tr0n serve`: the page, the API, every error class, a full queue, timeouts
// and a clean stop (the hostile clients are tests/tools/serve_hostile.py).
#include "support/script_files.hpp"

#ifdef TR0N_TEST_SERVE
#include <httplib.h>
#include <nlohmann/json.hpp>
#endif

#include <poll.h>
#include <signal.h>

#include <chrono>

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

#ifdef TR0N_TEST_SERVE

namespace {
/// `tr0n serve` in a child process on a free loopback port; killed (SIGKILL)
/// if still running when destroyed.
class server_process {
 public:
  explicit server_process(const std::string& args) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      const std::string cmd = "exec " + std::string(TR0N_CLI_PATH) + " serve --port 0 " + args + " 2>" +
                              (scratch() / "serve.err").string();
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    // The first line is "listening on http://127.0.0.1:PORT/"; wait for it at most 60 s.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char ch = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      if (::read(out[0], &ch, 1) != 1 || ch == '\n') break;
      line.push_back(ch);
    }
    ::close(out[0]);
    const auto colon = line.rfind(':');
    if (line.rfind("listening on http://", 0) == 0 && colon != std::string::npos) port_ = std::stoi(line.substr(colon + 1));
  }
  ~server_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  /// Sends `sig` and waits up to `seconds` for the exit; the exit status, or -1.
  int stop(int sig, int seconds) {
    ::kill(pid_, sig);
    for (int i = 0; i < seconds * 20; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  bool exited_ = false;
};

nlohmann::json body_of(const httplib::Result& r) { return nlohmann::json::parse(r->body); }
}  // namespace

TEST_CASE("tr0n serve: the page, the API, every error class, a full queue and a clean stop", "[tool][serve]") {
  const auto dir = scratch();
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const auto q = (dir / "serve_q.pt").string();
  REQUIRE(run_tool("train" + models + " --latent-dim 6 --condition-transform l2 --steps 50 --seed 1 --out " + q) == 0);
  const auto text = save_text_tower("serve_tower", true);
  server_process server(models + " --translator " + q + " --text-encoder " + text +
                        " --energy neg_cosine --queue 8 --max-n 64 --max-steps 2000 --max-body 4096 --timeout 60");
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  auto post = [&](const std::string& body) { return client.Post("/api/sample", body, "application/json"); };

  auto page = client.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type").find("text/html") != std::string::npos);
  CHECK(page->body.find("<canvas id=\"plot\"") != std::string::npos);
  CHECK(page->body.find("http") == page->body.find("http-equiv"));  // no external assets (no URLs at all)
  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);

  // A good request: shapes, and the same answer for the same seed.
  const std::string good = R"({"prompt": "a dark sandal", "n": 3, "steps": 4, "seed": 5})";
  auto a = post(good);
  REQUIRE(a);
  REQUIRE(a->status == 200);
  const auto ja = body_of(a);
  CHECK(ja["images"].size() == 3);
  CHECK(ja["images"][0].get<std::string>().rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);
  CHECK(ja["energy"].size() == 3);
  CHECK(ja["ok"].size() == 3);
  CHECK(ja["trace"].size() == 5);
  CHECK(ja["seconds"].get<double>() > 0);
  auto b = post(good);
  REQUIRE(b);
  CHECK(body_of(b)["energy"] == ja["energy"]);
  CHECK(body_of(b)["images"] == ja["images"]);
  auto c = post(R"({"prompt": "a dark sandal", "n": 3, "steps": 4, "seed": 6})");
  REQUIRE(c);
  CHECK(body_of(c)["energy"] != ja["energy"]);
  // Conditions instead of a prompt; the translator alone; the prior start.
  std::string conditions = "[";
  for (int64_t i = 0; i < feature_dim; ++i) conditions += (i ? "," : "") + std::to_string(0.1 * static_cast<double>(i));
  conditions += "]";
  auto d = post(R"({"conditions": )" + conditions + R"(, "n": 2, "init": "translator"})");
  REQUIRE(d);
  CHECK(d->status == 200);
  CHECK(body_of(d)["trace"].size() == 1);
  auto e = post(R"({"prompt": "bag", "n": 2, "steps": 3, "init": "prior"})");
  REQUIRE(e);
  CHECK(e->status == 200);

  // Errors: JSON {error} with the right status.
  auto expect = [&](const std::string& body, int status, const std::string& words) {
    INFO(body);
    auto r = post(body);
    REQUIRE(r);
    CHECK(r->status == status);
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["error"].get<std::string>().find(words) != std::string::npos);
  };
  expect("{not json", 400, "bad JSON");
  expect("[1, 2]", 400, "JSON object");
  expect(R"({"prompt": "a dark boot"})", 400, "unknown word 'boot'");
  expect(R"({"prompt": "bag", "n": 0})", 400, "n:");
  expect(R"({"prompt": "bag", "n": 65})", 400, "n:");
  expect(R"({"prompt": "bag", "n": 2.5})", 400, "n:");
  expect(R"({"prompt": "bag", "steps": 2001})", 400, "steps:");
  expect(R"({"prompt": "bag", "seed": -1})", 400, "seed:");
  expect(R"({"prompt": "bag", "init": "best"})", 400, "init:");
  expect(R"({"prompt": 7})", 400, "prompt:");
  expect(R"({"n": 2})", 400, "exactly one");
  expect(R"({"prompt": "bag", "conditions": [1]})", 400, "exactly one");
  expect(R"({"conditions": [1, 2]})", 400, "array of 12");
  expect(R"({"prompt": "a a a a"})", 400, "words");
  expect(std::string(5000, ' ') + "{}", 413, "too large");
  auto missing = client.Get("/nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(body_of(missing).contains("error"));

  // 32 concurrent slow requests against a queue of 8: each answered 200 or
  // 503 (with Retry-After), none lost; health checks answer meanwhile.
  std::vector<int> statuses(32, 0);
  std::vector<std::string> retry(32);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < statuses.size(); ++i)
    clients.emplace_back([&, i] {
      httplib::Client cl("127.0.0.1", server.port());
      cl.set_read_timeout(120, 0);
      auto r = cl.Post("/api/sample", R"({"prompt": "a dark sandal", "n": 64, "steps": 2000})", "application/json");
      if (r) {
        statuses[i] = r->status;
        retry[i] = r->get_header_value("Retry-After");
      } else {
        retry[i] = httplib::to_string(r.error());
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  httplib::Client probe("127.0.0.1", server.port());
  probe.set_read_timeout(5, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto busy_health = probe.Get("/healthz");
  const double health_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& t : clients) t.join();
  REQUIRE(busy_health);
  CHECK(busy_health->status == 200);
  CHECK(health_seconds < 2.0);
  int ok = 0, busy = 0;
  for (size_t i = 0; i < statuses.size(); ++i) {
    INFO("request " << i << " status " << statuses[i] << " " << retry[i]);
    CHECK((statuses[i] == 200 || statuses[i] == 503));
    if (statuses[i] == 200) ++ok;
    if (statuses[i] == 503) {
      ++busy;
      CHECK(retry[i] == "1");
    }
  }
  CHECK(ok >= 1);
  CHECK(busy >= 1);
  CHECK(ok <= 9 + busy);  // at most the queue, the one running, and those that came after a slot freed
  auto after = client.Get("/healthz");
  REQUIRE(after);
  CHECK(after->status == 200);

  // SIGTERM: the server stops cleanly.
  CHECK(server.stop(SIGTERM, 30) == 0);
}

TEST_CASE("tr0n serve: a request past --timeout is a 504, and the server carries on", "[tool][serve]") {
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  const auto text = save_text_tower("timeout_tower", true);
  server_process server(models + " --latent-dim 6 --text-encoder " + text +
                        " --energy neg_cosine --max-steps 100000 --timeout 0.05 --workers 1");
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  auto slow = client.Post("/api/sample", R"({"prompt": "bag", "n": 64, "steps": 100000})", "application/json");
  REQUIRE(slow);
  CHECK(slow->status == 504);
  CHECK(body_of(slow)["error"].get<std::string>().find("timed out") != std::string::npos);
  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(server.stop(SIGINT, 60) == 0);  // the abandoned request finishes, then the server exits
}

TEST_CASE("tr0n serve: --init and --steps set what a request gets when it names none", "[tool][serve]") {
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  CHECK(run_tool("serve" + models + " --latent-dim 6 --energy neg_cosine --steps 300") == 2);
  CHECK(tool_stderr() == "tr0n: --steps 300: more than --max-steps 200\n");
  CHECK(run_tool("serve" + models + " --latent-dim 6 --energy neg_cosine --init tr0n") == 2);
  CHECK(tool_stderr().find("--init tr0n: needs --translator") != std::string::npos);
  server_process server(models + " --latent-dim 6 --energy neg_cosine --init prior --steps 3 --workers 1");
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  auto info = client.Get("/api/info");
  REQUIRE(info);
  CHECK(body_of(info)["init"] == "prior");
  CHECK(body_of(info)["steps"] == 3);
  auto r = client.Post("/api/sample", R"({"conditions": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "n": 2})",
                       "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(body_of(r)["init"] == "prior");
  CHECK(body_of(r)["steps"] == 3);
  CHECK(body_of(r)["trace"].size() == 4);  // the start and three steps
  CHECK(server.stop(SIGTERM, 60) == 0);
}

TEST_CASE("tr0n serve: a port in use is a clear error", "[tool][serve]") {
  httplib::Server holder;
  const int port = holder.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  const std::string models = " --generator " + files().generator + " --encoder " + files().encoder;
  // Bounded: `timeout` ends a server that wrongly started.
  CHECK(run_tool("serve" + models + " --latent-dim 6 --energy neg_cosine --port " + std::to_string(port)) == 2);
  CHECK(tool_stderr().find("cannot listen") != std::string::npos);
}

#endif
