#!/usr/bin/env bash
# Runs the loaders' libFuzzer targets (tests/fuzz/README.md).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 600 s each, every target, two at a time
# Builds with the `fuzz` preset (clang-14), fuzzes from the seed corpus in
# tests/fuzz/corpus/<target>/ (new inputs go to fuzz-work/<target>/), and
# writes each target's final statistics to fuzz-work/<target>.log. A finding
# is copied to tests/fuzz/regressions/<target>/, where the normal ctest replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(translator checkpoint tensor_file idx image)
command -v clang++-14 >/dev/null || { echo "fuzz.sh: needs clang-14 (apt-get install clang-14 libclang-rt-14-dev libfuzzer-14-dev)"; exit 2; }
[ -d build-fuzz ] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p fuzz-work
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=1:detect_odr_violation=0:alloc_dealloc_mismatch=0"
export LSAN_OPTIONS="suppressions=$PWD/cmake/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run() {
  local t=$1
  mkdir -p "fuzz-work/$t" "fuzz-work/findings/$t"
  # Bounded: 10 s per input, 2 GiB resident, 1 GiB per allocation (a loader
  # that asks for more on hostile input is a finding).
  "build-fuzz/tests/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="fuzz-work/findings/$t/" "fuzz-work/$t" "tests/fuzz/corpus/$t" \
    >"fuzz-work/$t.log" 2>&1 || true
  for f in fuzz-work/findings/"$t"/*; do
    [ -f "$f" ] || continue
    mkdir -p "tests/fuzz/regressions/$t" && cp "$f" "tests/fuzz/regressions/$t/"
    echo "$t: FINDING $(basename "$f") (kept in tests/fuzz/regressions/$t/)"
  done
  echo "$t: $(grep -E '^stat::number_of_executed_units' "fuzz-work/$t.log" | awk '{print $2}') executions," \
       "$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "fuzz-work/$t.log" | tail -1)," \
       "corpus $(ls "fuzz-work/$t" | wc -l) files"
}
# Two at a time: these machines have two cores.
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [ $((i + 1)) -lt ${#targets[@]} ] && run "${targets[i + 1]}" &
  wait
done
