#pragma once
/// \file
/// The heap policy for programs: keep large tensors' blocks in the process.
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
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
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

/// Gives the heap's free pages back to the system (glibc's `malloc_trim(0)`),
/// so the next peak starts from what is live, not from what earlier peaks left
/// behind: after a real-size model's forward and backward (hundreds of MB in
/// blocks of a few MB, which glibc serves from its heap once its mmap threshold
/// has risen), freed pages stay resident and the next step's peak comes on top
/// of them. The pages fault back in when reused (measured below 10% of a step
/// at real size; at small sizes, where a step takes milliseconds, do not call
/// it per step). A no-op (returning false) where the C library is not glibc.
inline bool release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
  return true;
#else
  return false;
#endif
}

}  // namespace tr0n
