#!/bin/bash
# The GPU check: builds tr0n's tests and benchmarks against the CUDA LibTorch
# inside an installed torch wheel (LibTorch 2.x), runs every test with
# TR0N_TEST_DEVICE=cuda (the device-aware ones run on the GPU, the rest on the
# CPU as usual), then the sampler benchmark, and writes everything to
# OUT/gpu-check.txt (OUT: the first argument, default gpu-check-results/).
#
#   scripts/gpu-check.sh [OUT]
#
# Needs: a CUDA GPU; python3 with a CUDA build of torch (PYTHON picks another
# interpreter); cmake and ninja; a C++20 compiler; and, findable by CMake
# (list their prefixes in TR0N_DEPS_PREFIX, ';'-separated), Boost (Hana),
# range-v3, Catch2 v2 and Google Benchmark. Examples and the tool are not
# built (they need more libraries; their tests are skipped). The wheel's
# LibTorch is the pip one (README, "Using LibTorch from pip"): the report
# records its C++ ABI and the configure step's account of what it built
# (without Gloo headers distributed is off; under the old ABI, a Google
# Benchmark built with the new one is left out, and so are the benchmarks).
# On a machine without CUDA it says so in one line and exits with status 2.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/gpu-check-results}
python=${PYTHON:-python3}

info=$("$python" -c 'import torch; print(torch.__version__, torch.version.cuda or "-", int(torch.cuda.is_available()), int(torch.compiled_with_cxx11_abi()), torch.utils.cmake_prefix_path)' 2>/dev/null)
if [ -z "$info" ]; then
  echo "gpu-check: needs a machine with a CUDA GPU and $python with a CUDA build of torch (import torch failed)"
  exit 2
fi
read -r torch_version cuda_version gpu cxx11_abi torch_prefix <<<"$info"
if [ "$cuda_version" = "-" ] || [ "$gpu" != 1 ]; then
  echo "gpu-check: needs a machine with a CUDA GPU and a CUDA build of torch (found torch $torch_version, CUDA $cuda_version, GPU available: $([ "$gpu" = 1 ] && echo yes || echo no))"
  exit 2
fi

mkdir -p "$out"
report=$out/gpu-check.txt
build=$out/build
: >"$report"
log() { echo "$@" | tee -a "$report"; }
log "gpu-check at $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%FT%TZ)"
log "torch $torch_version, CUDA $cuda_version, C++11 ABI $cxx11_abi, LibTorch from $torch_prefix"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$report"

prefix="$torch_prefix${TR0N_DEPS_PREFIX:+;$TR0N_DEPS_PREFIX}"
log "== configure"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DTR0N_BUILD_EXAMPLES=OFF -DTR0N_BUILD_TOOLS=OFF -DTR0N_BUILD_TESTS=ON -DTR0N_BUILD_BENCHMARKS=ON \
  >"$out/configure.log" 2>&1 || { cat "$out/configure.log" >>"$report"; log "gpu-check: configure failed (see $report)"; exit 1; }
# The configure step's own account: LibTorch's version, ABI and CUDA, and what is off and why.
sed -n '/-- tr0n [0-9]/,/--   examples/p' "$out/configure.log" | tee -a "$report"
log "== build"
cmake --build "$build" >>"$report" 2>&1 || { log "gpu-check: build failed (see $report)"; exit 1; }

log "== tests on cuda"
status=0
TR0N_TEST_DEVICE=cuda ctest --test-dir "$build" --output-on-failure -j4 2>&1 | tee -a "$report" | tail -5 || status=1
grep -q "100% tests passed" "$report" || status=1

log "== the device-aware tests, verbose"
TR0N_TEST_DEVICE=cuda "$build/tests/tr0n_tests" "[device]" -s 2>&1 | grep -E "device|passed|failed" | head -20 | tee -a "$report"

if [ -x "$build/benchmarks/sampler_benchmark" ]; then
  log "== benchmarks (CPU models; the thread table and the ratios)"
  "$build/benchmarks/sampler_benchmark" --benchmark_color=false 2>&1 | tee -a "$report" | grep -E "^ratio|^share|^threads:"
else
  log "== benchmarks: not built (the configure report above says why)"
fi

log "gpu-check: done, status $status; results in $report"
exit $status
