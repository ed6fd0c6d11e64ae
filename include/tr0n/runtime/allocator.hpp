#pragma once
/// \file
/// The heap policy for programs: keep large tensors' blocks in the process
/// (small models), or give them mappings of their own (real-size models).
///
/// LibTorch takes a CPU tensor's memory from `malloc`. glibc serves blocks
/// over its mmap threshold (128 KiB at first, raised as blocks are freed)
/// with fresh pages from the kernel and gives them back on free, so a batch of
/// chains that allocates megabytes a step pays page faults on every step, or
/// not, depending on what was freed before: on the job's models, at 256 to
/// 1,024 chains in float32, a step took one or two times as long from one run
/// to the next. `keep_large_blocks()` fixes both thresholds (mmap at 32 MiB,
/// glibc's largest; trim at 256 MiB), so such blocks stay in the heap and are
/// reused: the faster mode, every time. The cost is memory kept after a peak
/// (up to the trim threshold) instead of returned at once.
///
/// Call it first thing in `main`; the same setting reaches child processes
/// through the environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`),
/// which is also how to get it without code. A no-op (returning false) where
/// the C library is not glibc. The benchmarks call it.
///
/// Real-size models want the opposite. A step of a StyleGAN2-like generator
/// at 256 pixels under CLIP ViT-B/32 frees and allocates hundreds of MB, and
/// in glibc's heap what one chain freed and the next allocates add up: `tr0n
/// sample` of 2 chains peaked at 1,207 to 1,377 MiB in bfloat16 (a chain is
/// 350 MiB, the models 215 MiB) and 1,294 to 1,354 MiB in float32.
/// `map_large_tensors()` gives each CPU tensor of 4 MiB or more a mapping of
/// its own, 2 MiB-aligned and advised for transparent huge pages (so a fault
/// brings 2 MiB, not 4 KiB), returned to the system when the tensor is freed;
/// the same runs then peaked at 921 to 934 MiB and 1,175 to 1,181 MiB, every
/// time. Fresh pages come zeroed, which costs bfloat16 steps about a third
/// more time (float32 steps nothing measurable): `reuse_bytes` keeps that many bytes
/// of freed mappings to serve later blocks of the same length, and
/// `release_free_memory()` returns them. `tr0n sample` installs it at start
/// and keeps what its memory budget leaves over a batch; TR0N_NO_MAP=1 turns it
/// off. Without transparent huge pages it does nothing.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <unordered_map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tr0n {

/// Applies the policy above; true when it could (glibc).
inline bool keep_large_blocks() {
#if defined(__GLIBC__)
  constexpr int mmap_threshold = 32 << 20, trim_threshold = 256 << 20;
  const bool ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
  setenv("MALLOC_MMAP_THRESHOLD_", "33554432", 0);
  setenv("MALLOC_TRIM_THRESHOLD_", "268435456", 0);
  return ok;
#else
  return false;
#endif
}

namespace detail {

// LibTorch 2.3 made `c10::Allocator::allocate` non-const and added a pure
// `copy_data`; tr0n's allocators are spelled for each, chosen by what
// `c10::Allocator` declares.
template <class Base>
inline constexpr bool const_allocate = requires(const Base& a) { a.allocate(std::size_t{}); };

/// Whether the kernel gives transparent huge pages to a mapping that asks
/// (`madvise` or `always` in /sys/kernel/mm/transparent_hugepage/enabled).
inline bool huge_pages_on_request() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

/// The mapping part of `map_large_tensors`: blocks of `threshold` bytes or more
/// get a mapping of their own, 2 MiB-aligned and advised for huge pages, whose
/// length is kept in a table until the block is freed; smaller blocks, and a
/// mapping the kernel refuses, go to the allocator it replaced (`inner`). A
/// block's context is its data pointer, as LibTorch's own CPU allocator makes
/// them (code that calls `raw_allocate` asserts it).
struct mapping_core {
  c10::Allocator* inner = nullptr;
  std::size_t threshold = 0;
  std::size_t idle_cap = 0;
  std::mutex mutex;
  std::unordered_map<void*, std::size_t> maps;  // data -> mapped length, for blocks in use
  std::unordered_multimap<std::size_t, void*> idle;  // length -> freed mapping kept for reuse
  std::size_t idle_bytes = 0;

  static mapping_core& instance() {
    static auto* m = new mapping_core();  // never destroyed: blocks may be freed at exit
    return *m;
  }

  static void free_block(void* ptr) {
    auto& m = instance();
    std::size_t length = 0;
    {
      std::lock_guard<std::mutex> lock(m.mutex);
      const auto it = m.maps.find(ptr);
      if (it != m.maps.end()) {
        length = it->second;
        m.maps.erase(it);
        if (m.idle_bytes + length <= m.idle_cap) {  // kept, to be reused without fresh pages
          m.idle.emplace(length, ptr);
          m.idle_bytes += length;
          return;
        }
      }
    }
#if defined(__linux__)
    if (length > 0) {
      ::munmap(ptr, length);
      return;
    }
#endif
    m.inner->raw_deleter()(ptr);
  }

  /// Unmaps the freed mappings kept for reuse.
  void release_idle() {
    std::unordered_multimap<std::size_t, void*> kept;
    {
      std::lock_guard<std::mutex> lock(mutex);
      kept.swap(idle);
      idle_bytes = 0;
    }
#if defined(__linux__)
    for (const auto& [length, ptr] : kept) ::munmap(ptr, length);
#endif
  }

  c10::DataPtr allocate(std::size_t n) {
#if defined(__linux__)
    if (n >= threshold && threshold > 0) {
      constexpr std::uintptr_t huge = std::uintptr_t{2} << 20, page = 4096;
      const std::size_t length = (n + page - 1) / page * page;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (const auto it = idle.find(length); it != idle.end()) {
          void* ptr = it->second;
          idle.erase(it);
          idle_bytes -= length;
          maps.emplace(ptr, length);
          return {ptr, ptr, &mapping_core::free_block, c10::Device(c10::DeviceType::CPU)};
        }
      }
      void* base = ::mmap(nullptr, length + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base != MAP_FAILED) {
        // Keep the 2 MiB-aligned part: the slack before and after goes back at once.
        const auto b = reinterpret_cast<std::uintptr_t>(base), data = (b + huge - 1) / huge * huge;
        if (data > b) ::munmap(base, data - b);
        if (b + length + huge > data + length)
          ::munmap(reinterpret_cast<void*>(data + length), b + length + huge - (data + length));
        void* ptr = reinterpret_cast<void*>(data);
        ::madvise(ptr, length, MADV_HUGEPAGE);
        {
          std::lock_guard<std::mutex> lock(mutex);
          maps.emplace(ptr, length);
        }
        return {ptr, ptr, &mapping_core::free_block, c10::Device(c10::DeviceType::CPU)};
      }
    }
#endif
    return inner->allocate(n);
  }
};

/// A `c10::Allocator` that hands every block to `Core::instance().allocate` and frees it with
/// `Core::free_block` (tr0n's allocators: `mapping_core` here, the memory probe's `counting_core`),
/// spelled for LibTorch before and after 2.3 (`const_allocate`).
template <class Core, class Base = c10::Allocator, bool = const_allocate<Base>>
class core_allocator : public Base {  // 2.3 and later
 public:
  c10::DataPtr allocate(std::size_t n) override { return Core::instance().allocate(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &Core::free_block; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    this->default_copy_data(dest, src, count);
  }
};

template <class Core, class Base>
class core_allocator<Core, Base, true> : public Base {  // before 2.3
 public:
  c10::DataPtr allocate(std::size_t n) const override { return Core::instance().allocate(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &Core::free_block; }
};

}  // namespace detail

/// Gives the heap's free pages back to the system (glibc's `malloc_trim(0)`),
/// so the next peak starts from what is live, not from what earlier peaks left
/// behind: after a real-size model's forward and backward (hundreds of MB in
/// blocks of a few MB, which glibc serves from its heap once its mmap threshold
/// has risen), freed pages stay resident and the next step's peak comes on top
/// of them. The pages fault back in when reused (measured below 10% of a step
/// at real size; at small sizes, where a step takes milliseconds, do not call
/// it per step). Also unmaps the freed mappings `map_large_tensors` kept for
/// reuse. Returns false where the C library is not glibc (the heap is not
/// trimmed there).
inline bool release_free_memory() {
  detail::mapping_core::instance().release_idle();
#if defined(__GLIBC__)
  malloc_trim(0);
  return true;
#else
  return false;
#endif
}

/// Gives every CPU tensor allocated from now on of `threshold_bytes` or more a
/// mapping of its own on transparent huge pages, returned to the system when it
/// is freed (see the file comment); smaller ones stay with the allocator in
/// place. Freed mappings are kept, up to `reuse_bytes` in all, for later
/// blocks of the same length, until `release_free_memory()`. For the rest of
/// the program: call it before the tensors it is for, and not while another
/// thread installs an allocator. True when installed; false (and nothing
/// changes) off Linux, where transparent huge pages are off, or where an
/// allocator of higher priority than LibTorch's own is installed. A second
/// call changes the threshold and `reuse_bytes`.
inline bool map_large_tensors(std::size_t threshold_bytes = std::size_t{4} << 20, std::size_t reuse_bytes = 0) {
#if defined(__linux__)
  static auto* allocator = new detail::core_allocator<detail::mapping_core>();
  static bool installed = false;
  auto& core = detail::mapping_core::instance();
  if (installed) {
    std::lock_guard<std::mutex> lock(core.mutex);
    core.threshold = threshold_bytes;
    core.idle_cap = reuse_bytes;
    return true;
  }
  if (!detail::huge_pages_on_request()) return false;
  core.inner = c10::GetCPUAllocator();
  core.threshold = threshold_bytes;
  core.idle_cap = reuse_bytes;
  c10::SetCPUAllocator(allocator, /*priority=*/0);
  installed = c10::GetCPUAllocator() == allocator;
  return installed;
#else
  (void)threshold_bytes;
  (void)reuse_bytes;
  return false;
#endif
}

}  // namespace tr0n
