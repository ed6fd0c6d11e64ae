#pragma once
// What keeps `tr0n serve` up when a client misbehaves, on Debian's cpp-httplib
// 0.11. That httplib bounds a body only by its Content-Length, reads chunked,
// length-less and compressed bodies whole before routing, times out each read
// rather than the request, and queues connections without bound. So:
//  - `guarded_server` reads each connection through a `deadline_stream`: one
//    request per connection, a deadline for the whole request (line, headers
//    and body) and a cap on the bytes read, whatever the framing;
//  - a `connection_pool` of `max_connections` threads; a connection past that
//    bound gets a 503 at once, on the accepting thread, and is closed;
//  - `request_policy` refuses, before any body is read, what the server does
//    not take: bodies without a Content-Length, chunked or compressed bodies,
//    too many headers, foreign Host and Origin headers, POSTs that are not JSON.
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <cctype>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tr0n_cli::http {

using clock = std::chrono::steady_clock;

/// The server's limits, each a flag of `tr0n serve`.
struct limits {
  size_t max_body = 64 * 1024;                  ///< bytes of a request body
  size_t max_header_bytes = 16 * 1024;          ///< request line and headers together
  size_t max_headers = 64;                      ///< header fields
  std::chrono::milliseconds deadline{10'000};   ///< to receive a whole request
  std::chrono::milliseconds write_timeout{10'000};
  size_t max_connections = 128;                 ///< open at once; more get a 503
};

/// A connected socket as httplib's `Stream`. Reads wait at most until the
/// request's deadline and stop after `max_read` bytes (the connection then
/// fails, as on a timeout); writes wait at most `write_timeout` each.
class deadline_stream final : public httplib::Stream {
 public:
  deadline_stream(socket_t sock, clock::time_point deadline, size_t max_read, std::chrono::milliseconds write_timeout)
      : sock_(sock), deadline_(deadline), max_read_(max_read), write_timeout_(write_timeout) {}

  bool is_readable() const override { return wait(POLLIN, until_deadline()); }
  bool is_writable() const override { return wait(POLLOUT, write_timeout_); }

  ssize_t read(char* ptr, size_t size) override {
    if (read_ >= max_read_ || !is_readable()) return -1;
    const ssize_t n = retry([&] { return ::recv(sock_, ptr, std::min(size, max_read_ - read_), 0); });
    if (n > 0) read_ += static_cast<size_t>(n);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    return retry([&] { return ::send(sock_, ptr, size, MSG_NOSIGNAL); });
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  std::chrono::milliseconds until_deadline() const {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock::now()));
  }
  bool wait(short events, std::chrono::milliseconds timeout) const {
    pollfd p{sock_, events, 0};
    const auto until = clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
      const int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left)));
      if (r > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
      if (r == 0 || errno != EINTR) return false;
    }
  }
  template <class F>
  static ssize_t retry(F f) {
    ssize_t n;
    do n = f();
    while (n < 0 && errno == EINTR);
    return n;
  }
  template <class F>
  void address(F get, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    ip.clear();
    port = 0;
    if (get(sock_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
      ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
      port = ntohs(v4->sin_port);
    } else if (a.ss_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
      port = ntohs(v6->sin6_port);
    }
    ip = text;
  }

  socket_t sock_;
  clock::time_point deadline_;
  size_t max_read_, read_ = 0;
  std::chrono::milliseconds write_timeout_;
};

/// httplib's task queue with a bound: `threads` workers, and no waiting line.
/// A connection that finds every worker busy is run at once on the accepting
/// thread in `rejecting` mode (the server answers 503 without reading).
class connection_pool final : public httplib::TaskQueue {
 public:
  explicit connection_pool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~connection_pool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      if (!closed_ && busy_ + tasks_.size() < workers_.size()) {
        tasks_.push_back(std::move(fn));
        ready_.notify_one();
        return;
      }
    }
    rejecting() = true;
    fn();
    rejecting() = false;
  }
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
      ready_.notify_all();
    }
    for (auto& w : workers_) w.join();
  }
  /// True on a thread that runs a connection past the bound.
  static bool& rejecting() {
    thread_local bool on = false;
    return on;
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return closed_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        fn = std::move(tasks_.front());
        tasks_.pop_front();
        ++busy_;
      }
      fn();
      std::lock_guard lock(mutex_);
      --busy_;
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> workers_;
  size_t busy_ = 0;
  bool closed_ = false;
};

/// An httplib server that reads every connection through a `deadline_stream`
/// (one request a connection) and answers connections past the bound with 503.
class guarded_server : public httplib::Server {
 public:
  explicit guarded_server(limits l) : limits_(l) {
    new_task_queue = [n = l.max_connections] { return new connection_pool(n); };
    set_payload_max_length(l.max_body);
  }
  const limits& bounds() const { return limits_; }

 private:
  bool process_and_close_socket(socket_t sock) override {
    bool ok = false;
    if (connection_pool::rejecting()) {
      static const std::string body = "{\"error\": \"busy: too many connections, try again shortly\"}";
      static const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                      "Content-Length: " + std::to_string(body.size()) +
                                      "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
      (void)::send(sock, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      deadline_stream stream(sock, clock::now() + limits_.deadline, limits_.max_header_bytes + limits_.max_body,
                             limits_.write_timeout);
      bool closed = false;
      ok = process_request(stream, /*close_connection=*/true, closed, nullptr);
    }
    close_lingering(sock);
    return ok;
  }

  /// Closes after the answer has left: stop sending, then read and drop what
  /// the client still sends (at most 1 s and 1 MiB), so that a client still
  /// sending a refused body reads the answer instead of a reset.
  static void close_lingering(socket_t sock) {
    ::shutdown(sock, SHUT_WR);
    const auto until = clock::now() + std::chrono::seconds(1);
    char sink[16 * 1024];
    for (size_t total = 0; total < (size_t{1} << 20);) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
      pollfd p{sock, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      const ssize_t n = ::recv(sock, sink, sizeof sink, 0);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
    ::close(sock);
  }

  limits limits_;
};

/// A refusal: HTTP status and a message naming what was refused.
struct refusal {
  int status;
  std::string message;
};

/// Which requests the server takes, decided from the request line and headers
/// alone, before any body is read.
class request_policy {
 public:
  /// `host`: the address the server listens on; `port`: its port;
  /// `extra_hosts`: more names it is reached by (`--allow-host`).
  request_policy(const std::string& host, int port, const std::vector<std::string>& extra_hosts, limits l)
      : port_(port), any_address_(host == "0.0.0.0" || host == "::" || host.empty()), limits_(l) {
    const auto add = [&](const std::string& name) {
      hosts_.insert(lower(name) + ":" + std::to_string(port));
      if (port == 80) hosts_.insert(lower(name));
    };
    if (host == "127.0.0.1" || host == "localhost" || host == "::1") {
      for (const char* name : {"127.0.0.1", "localhost", "[::1]"}) add(name);
    } else if (!any_address_) {
      add(host.find(':') != std::string::npos ? "[" + host + "]" : host);
    }
    for (const auto& name : extra_hosts) add(name);
  }

  /// Why `req` is refused, or nothing when it is taken.
  std::optional<refusal> check(const httplib::Request& req) const {
    if (req.headers.size() > limits_.max_headers)
      return refusal{431, "more than " + std::to_string(limits_.max_headers) + " header fields"};
    if (!allowed_host(req.get_header_value("Host")))
      return refusal{403, "Host: this server does not answer to that name (a DNS rebinding guard; see --allow-host)"};
    if (req.has_header("Origin") && !allowed_origin(req.get_header_value("Origin")))
      return refusal{403, "Origin: requests from other sites are refused"};
    if (lower(req.get_header_value("Sec-Fetch-Site")) == "cross-site")
      return refusal{403, "Sec-Fetch-Site: requests from other sites are refused"};
    if (req.has_header("Transfer-Encoding"))
      return refusal{411, "Transfer-Encoding: send the body with a Content-Length instead"};
    if (const auto enc = lower(req.get_header_value("Content-Encoding")); !enc.empty() && enc != "identity")
      return refusal{415, "Content-Encoding: compressed bodies are refused"};
    const auto length = content_length(req);
    if (!length && req.has_header("Content-Length")) return refusal{400, "Content-Length: not a number"};
    if (length && *length > limits_.max_body)
      return refusal{413, "request body too large (at most " + std::to_string(limits_.max_body) + " bytes)"};
    if (req.method == "POST") {
      if (!length) return refusal{411, "Content-Length: required"};
      const auto type = lower(req.get_header_value("Content-Type"));
      if (type.substr(0, type.find(';')) != "application/json")
        return refusal{415, "Content-Type: expected application/json"};
    } else if (length && *length > 0) {
      return refusal{400, "a " + req.method + " request has no body"};
    }
    return std::nullopt;
  }

 private:
  static std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    return s;
  }
  static std::optional<size_t> content_length(const httplib::Request& req) {
    if (req.get_header_value_count("Content-Length") != 1) return std::nullopt;
    const auto v = req.get_header_value("Content-Length");
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return static_cast<size_t>(std::stoull(v));
  }
  /// An IP address literal with this server's port: safe from DNS rebinding.
  bool ip_literal_with_port(const std::string& h) const {
    const auto colon = h.rfind(':');
    if (colon == std::string::npos || h.substr(colon + 1) != std::to_string(port_)) return false;
    std::string ip = h.substr(0, colon);
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, ip.c_str(), buf) == 1 || ::inet_pton(AF_INET6, ip.c_str(), buf) == 1;
  }
  bool allowed_host(const std::string& value) const {
    const auto h = lower(value);
    return hosts_.count(h) > 0 || (any_address_ && ip_literal_with_port(h));
  }
  bool allowed_origin(const std::string& value) const {
    const auto o = lower(value);
    return o.rfind("http://", 0) == 0 && allowed_host(o.substr(7));
  }

  int port_;
  bool any_address_;
  limits limits_;
  std::set<std::string> hosts_;
};

/// Headers on every answer: no sniffing, no framing, no referrer; and the
/// page's content security policy (itself only; images from data: URLs).
inline httplib::Headers security_headers() {
  return {{"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"},
          {"Cache-Control", "no-store"},
          {"Content-Security-Policy",
           "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}};
}

/// Whether `s` is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

}  // namespace tr0n_cli::http
