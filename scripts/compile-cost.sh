#!/bin/bash
# Compile cost of `#include <tr0n.hpp>` over LibTorch's headers alone: the
# same translation unit compiled with and without it, each REPEATS times
# (alternating), with the flags a Release build uses. Prints the medians and
# the ratio. Goal: under 1.15.
#
#   scripts/compile-cost.sh [REPEATS]   (default 3; about 20 s a compile here)
#   CXX=clang++-14 scripts/compile-cost.sh
set -euo pipefail
repeats=${1:-3}
cxx=${CXX:-g++}
root=$(cd "$(dirname "$0")/.." && pwd)
torch_api=$(dirname "$(find /usr/include /usr/local/include -maxdepth 6 -path '*torch/csrc/api/include/torch/torch.h' 2>/dev/null | head -1)")
[ -n "${TORCH_INCLUDE:-}" ] && torch_api=$TORCH_INCLUDE/torch/csrc/api/include/torch
if [ ! -f "$torch_api/torch.h" ]; then
  echo "compile-cost: LibTorch's headers not found (install libtorch-dev, or set TORCH_INCLUDE)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#include <torch/torch.h>\nint main() { return torch::ones({1}).numel() == 1 ? 0 : 1; }\n' > "$work/torch_only.cpp"
printf '#include <torch/torch.h>\n#include <tr0n.hpp>\nint main() { return torch::ones({1}).numel() == 1 ? 0 : 1; }\n' > "$work/with_tr0n.cpp"
flags=(-std=c++20 -O2 -DNDEBUG -c -I"$root/include" -I"$(dirname "$torch_api")")
[ -n "${TORCH_INCLUDE:-}" ] && flags+=(-I"$TORCH_INCLUDE")
time_one() {
  local start end
  start=$(date +%s.%N)
  if ! "$cxx" "${flags[@]}" "$work/$1.cpp" -o "$work/$1.o" >"$work/$1.log" 2>&1; then
    echo "compile-cost: $1.cpp does not compile:" >&2
    head -20 "$work/$1.log" >&2
    return 1
  fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
}
declare -a a b
for ((i = 0; i < repeats; ++i)); do
  a+=("$(time_one torch_only)") || exit 1
  b+=("$(time_one with_tr0n)") || exit 1
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${a[@]}")
mb=$(median "${b[@]}")
echo "compiler: $($cxx --version | head -1)"
echo "torch/torch.h alone:            ${ma} s (median of $repeats)"
echo "torch/torch.h + tr0n.hpp:       ${mb} s"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "ratio: %.3f (goal: under 1.15)\n", b / a }'
