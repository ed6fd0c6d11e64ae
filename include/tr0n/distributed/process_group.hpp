#pragma once
/// \file
/// A process group from the environment `torchrun` sets, on LibTorch's own
/// `torch.distributed` core (c10d): `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
/// `MASTER_ADDR` and `MASTER_PORT`. Rank 0 serves a `c10d::TCPStore` at
/// `MASTER_ADDR:MASTER_PORT`, every rank connects to it, and the ranks talk
/// through `ProcessGroupGloo` (CPU tensors). A process with none of the
/// variables set runs alone: a group of one, whose collectives do nothing.
///
/// Not part of `tr0n.hpp`: it needs LibTorch's c10d headers with Gloo (Debian:
/// `libgloo-dev`), which the `tr0n::distributed` CMake target checks for and
/// enables (`USE_C10D_GLOO`).
///
/// ```
/// auto group = tr0n::distributed::process_group::from_environment();
/// auto t = torch::ones({3});
/// group.all_reduce_sum(t);                 // t = world_size everywhere
/// auto all = group.gather(t.narrow(0, 0, group.rank() + 1));  // on rank 0: every rank's rows, in rank order
/// ```
///
/// Every collective is bounded by the group's timeout: a rank that dies, or
/// never comes, makes the others fail with an error naming the operation,
/// never hang.
#include <tr0n/detail/check.hpp>

#include <torch/types.h>

#ifndef USE_C10D_GLOO
#error "tr0n/distributed needs LibTorch's c10d with Gloo: link tr0n::distributed (it defines USE_C10D_GLOO)"
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace tr0n::distributed {

/// The `torchrun` variables of this process.
struct environment {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::string master_addr;
  int64_t master_port = 0;
  /// False when none of the variables is set: the process runs alone.
  bool launched = false;

  /// Reads the variables. None set: alone. Any set: RANK, WORLD_SIZE,
  /// MASTER_ADDR and MASTER_PORT must all be, consistently (LOCAL_RANK
  /// defaults to RANK); otherwise one `std::invalid_argument` naming the
  /// variable and what is wrong with it.
  static environment from_env() {
    static constexpr const char* names[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"};
    bool any = false;
    for (const char* n : names) any = any || std::getenv(n) != nullptr;
    environment e;
    if (!any) return e;
    e.launched = true;
    e.rank = integer("RANK", 0);
    e.world_size = integer("WORLD_SIZE", 1);
    e.local_rank = std::getenv("LOCAL_RANK") ? integer("LOCAL_RANK", 0) : e.rank;
    e.master_addr = text("MASTER_ADDR");
    e.master_port = integer("MASTER_PORT", 1);
    if (e.rank >= e.world_size)
      detail::fail("distributed: RANK=", e.rank, " is not below WORLD_SIZE=", e.world_size,
                   ": expected ranks 0 to ", e.world_size - 1);
    if (e.master_port > 65535) detail::fail("distributed: MASTER_PORT=", e.master_port, ": expected a port, 1 to 65535");
    return e;
  }

 private:
  static std::string text(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v)
      detail::fail("distributed: ", name, " is not set (set by torchrun; needed once any of RANK, WORLD_SIZE, "
                   "LOCAL_RANK, MASTER_ADDR, MASTER_PORT is)");
    return v;
  }
  static int64_t integer(const char* name, int64_t at_least) {
    const std::string v = text(name);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (errno != 0 || end == v.c_str() || *end != '\0')
      detail::fail("distributed: ", name, "='", detail::printable(v), "': expected an integer");
    if (x < at_least) detail::fail("distributed: ", name, "=", x, ": expected at least ", at_least);
    return x;
  }
};

struct group_options {
  /// Bound on connecting and on every collective.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
};

/// A group of `world_size` cooperating processes (or one alone).
class process_group {
 public:
  /// The group of the current environment (`environment::from_env`).
  static process_group from_environment(group_options options = {}) {
    return process_group(environment::from_env(), options);
  }

  explicit process_group(const environment& env, group_options options = {}) : env_(env), options_(options) {
    if (!env.launched || env.world_size == 1) return;
    connect();
  }

  int64_t rank() const noexcept { return env_.rank; }
  int64_t world_size() const noexcept { return env_.world_size; }
  int64_t local_rank() const noexcept { return env_.local_rank; }
  bool alone() const noexcept { return !pg_; }
  bool is_root() const noexcept { return env_.rank == 0; }
  const environment& env() const noexcept { return env_; }

  /// `t` becomes the sum of every rank's `t` (same shape everywhere), in place.
  void all_reduce_sum(torch::Tensor& t) {
    if (alone()) return;
    std::vector<torch::Tensor> ts{t};
    wait(pg_->allreduce(ts), "all_reduce");
  }

  /// `t` becomes rank `root`'s `t` (same shape everywhere), in place.
  void broadcast(torch::Tensor& t, int64_t root = 0) {
    if (alone()) return;
    std::vector<torch::Tensor> ts{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    wait(pg_->broadcast(ts, o), "broadcast");
  }

  /// Rank `root`'s `value` (a seed, say), everywhere; all 64 bits travel.
  uint64_t broadcast(uint64_t value, int64_t root = 0) {
    auto t = torch::full({1}, static_cast<int64_t>(value), torch::kLong);
    broadcast(t, root);
    return static_cast<uint64_t>(t.item<int64_t>());
  }

  /// On rank `root`, every rank's `t` in rank order (their first dimensions
  /// may differ; the rest of the shape and the dtype must match); elsewhere
  /// an empty list.
  std::vector<torch::Tensor> gather(const torch::Tensor& t, int64_t root = 0) {
    if (alone()) return {t};
    // Sizes first, then rows padded to the longest.
    auto rows = torch::full({world_size()}, 0, torch::kLong);
    rows[rank()] = t.size(0);
    all_reduce_sum(rows);
    const auto longest = rows.max().item<int64_t>();
    auto shape = t.sizes().vec();
    shape[0] = longest;
    auto padded = torch::zeros(shape, t.options());
    padded.narrow(0, 0, t.size(0)).copy_(t.contiguous());
    std::vector<std::vector<torch::Tensor>> outputs;
    if (rank() == root) outputs.emplace_back(static_cast<size_t>(world_size()), torch::Tensor());
    if (rank() == root)
      for (auto& o : outputs[0]) o = torch::empty(shape, t.options());
    std::vector<torch::Tensor> inputs{padded};
    c10d::GatherOptions o;
    o.rootRank = root;
    wait(pg_->gather(outputs, inputs, o), "gather");
    if (rank() != root) return {};
    std::vector<torch::Tensor> out;
    for (int64_t r = 0; r < world_size(); ++r) out.push_back(outputs[0][static_cast<size_t>(r)].narrow(0, 0, rows[r].item<int64_t>()));
    return out;
  }

  /// Returns once every rank has called it.
  void barrier() {
    if (alone()) return;
    wait(pg_->barrier(), "barrier");
  }

 private:
  void connect() {
    const std::string where = "distributed: rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) +
                              " at " + env_.master_addr + ":" + std::to_string(env_.master_port);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env_.master_port);
    so.isServer = env_.rank == 0;
    so.numWorkers = env_.world_size;
    so.waitWorkers = false;
    so.timeout = options_.timeout;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
    } catch (const std::exception& e) {
      if (so.isServer)
        detail::fail(where, ": cannot serve the store on MASTER_PORT=", env_.master_port,
                     " (in use, or MASTER_ADDR is not an address of this machine): ", detail::brief(e));
      detail::fail(where, ": cannot reach rank 0's store within ", options_.timeout.count(), " ms: ", detail::brief(e));
    }
    // Rank 0 states its world size; every other rank compares, says what it found, and stops on a
    // mismatch; rank 0 reads every verdict, so both sides of a mismatch name it.
    const std::string mine = std::to_string(env_.world_size);
    auto bytes = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
    try {
      if (env_.rank == 0) {
        store_->set("tr0n/world_size", bytes(mine));
        for (int64_t r = 1; r < env_.world_size; ++r) {
          const auto v = store_->get("tr0n/verdict/" + std::to_string(r));
          const std::string verdict(v.begin(), v.end());
          if (verdict != mine)
            detail::fail(where, ": rank ", r, " was started with WORLD_SIZE=", verdict, ", here WORLD_SIZE=", mine,
                         ": every rank must be started with the same WORLD_SIZE");
        }
      } else {
        const auto v = store_->get("tr0n/world_size");
        const std::string theirs(v.begin(), v.end());
        store_->set("tr0n/verdict/" + std::to_string(env_.rank), bytes(mine));
        if (theirs != mine)
          detail::fail(where, ": WORLD_SIZE=", mine, " here but ", theirs,
                       " on rank 0: every rank must be started with the same WORLD_SIZE");
      }
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      detail::fail(where, ": not every rank joined within ", options_.timeout.count(),
                   " ms (a rank missing, or started with another WORLD_SIZE): ", detail::brief(e));
    }
    auto o = c10d::ProcessGroupGloo::Options::create(options_.timeout);
    o->devices.push_back(gloo_device(where));
    try {
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(env_.rank),
                                                       static_cast<int>(env_.world_size), o);
    } catch (const std::exception& e) {
      detail::fail(where, ": cannot connect the Gloo group: ", detail::brief(e));
    }
  }

  /// This host's Gloo device: the interface GLOO_SOCKET_IFNAME names, else the
  /// local address that routes to MASTER_ADDR (torch.distributed's choice; on
  /// one host that is MASTER_ADDR itself). Never MASTER_ADDR on another host,
  /// which a rank there cannot bind.
  std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& where) const {
    std::string address;
    try {
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
        const std::string first = std::string(ifname).substr(0, std::string(ifname).find(','));
        address = "interface " + first + " (GLOO_SOCKET_IFNAME)";
        return c10d::ProcessGroupGloo::createDeviceForInterface(first);
      }
      address = local_address_towards(where);
      return c10d::ProcessGroupGloo::createDeviceForHostname(address);
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      detail::fail(where, ": cannot bind the Gloo transport to ", address, ": ", detail::brief(e));
    }
  }

  /// The local address a datagram to MASTER_ADDR would leave from (a UDP
  /// socket's connect sends nothing; the routing table picks the address).
  std::string local_address_towards(const std::string& where) const {
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* found = nullptr;
    const auto port = std::to_string(env_.master_port);
    if (const int rc = ::getaddrinfo(env_.master_addr.c_str(), port.c_str(), &hints, &found); rc != 0)
      detail::fail(where, ": cannot resolve MASTER_ADDR=", env_.master_addr, ": ", ::gai_strerror(rc));
    std::string local;
    for (auto* a = found; a && local.empty(); a = a->ai_next) {
      const int fd = ::socket(a->ai_family, SOCK_DGRAM, 0);
      if (fd < 0) continue;
      sockaddr_storage mine{};
      socklen_t len = sizeof mine;
      char text[INET6_ADDRSTRLEN] = {};
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
          ::getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &len) == 0) {
        const void* at = mine.ss_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&mine)->sin_addr)
                                                   : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&mine)->sin6_addr);
        if (::inet_ntop(mine.ss_family, at, text, sizeof text)) local = text;
      }
      ::close(fd);
    }
    ::freeaddrinfo(found);
    if (local.empty())
      detail::fail(where, ": no local address reaches MASTER_ADDR=", env_.master_addr,
                   " (no route; set GLOO_SOCKET_IFNAME to the interface to use)");
    return local;
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* op) {
    try {
      if (!work->wait(options_.timeout))
        detail::fail("distributed: ", op, " on rank ", env_.rank, ": timed out after ", options_.timeout.count(), " ms");
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      detail::fail("distributed: ", op, " on rank ", env_.rank, " of ", env_.world_size,
                   " failed (a rank died, or timed out after ", options_.timeout.count(), " ms): ", detail::brief(e));
    }
  }

  environment env_;
  group_options options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;  // a ProcessGroup in LibTorch 1.13, a Backend in 2.x
};

}  // namespace tr0n::distributed
