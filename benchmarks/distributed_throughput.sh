#!/usr/bin/env bash
# Translator-training throughput of `tr0n train` at 1, 2 and 4 processes (c10d, Gloo, loopback),
# on the main job's models: wall time of the whole run, start-up included; the configurations
# alternate, REPEATS rounds, and each reports its median.
#   benchmarks/distributed_throughput.sh [STEPS] [BATCH] [REPEATS]   (default 300 steps of 256 pairs a rank, 5 rounds)
# Needs build/tools/tr0n built with tr0n::distributed, and the main job's models in models/.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-300}
batch=${2:-256}
repeats=${3:-5}
tool=build/tools/tr0n
probe=build/tests/tr0n_dist_probe
for f in "$tool" "$probe" models/generator.ts.pt models/aux_classifier.ts.pt; do
  [ -e "$f" ] || { echo "distributed_throughput: $f is missing (build the project, run the main job)"; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(train --generator models/generator.ts.pt --encoder models/aux_classifier.ts.pt --latent-dim 16
      --condition-transform softmax --steps "$steps" --batch "$batch" --seed 0 --checkpoint-every 0)
run() {  # run PROCESSES THREADS: prints the pairs per second
  local world=$1 threads=$2 port start end
  port=$("$probe" free-port)
  start=$(date +%s.%N)
  if [ "$world" = 1 ]; then
    "$tool" "${args[@]}" --threads "$threads" --out "$work/q.pt" 2>"$work/err" || { cat "$work/err"; exit 1; }
  else
    for ((r = 0; r < world; ++r)); do
      RANK=$r WORLD_SIZE=$world LOCAL_WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        "$tool" "${args[@]}" --threads "$threads" --out "$work/q.pt" 2>"$work/err.$r" &
    done
    wait || { cat "$work"/err.*; exit 1; }
  fi
  end=$(date +%s.%N)
  awk -v n=$((steps * batch * world)) -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }'
}
configs=("1 1" "1 2" "2 1" "4 1")
declare -A rates
for ((k = 0; k < repeats; ++k)); do
  for config in "${configs[@]}"; do rates[$config]+="$(run $config) "; done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| processes | threads each | pairs/s (median of $repeats) | range | against 1 process, 1 thread |"
echo "|---:|---:|---:|---:|---:|"
base=$(median "${rates[1 1]}")
for config in "${configs[@]}"; do
  set -- $config
  sorted=$(tr ' ' '\n' <<<"${rates[$config]}" | grep . | sort -n)
  awk -v p="$1" -v t="$2" -v r="$(median "${rates[$config]}")" -v b="$base" -v lo="$(head -1 <<<"$sorted")" -v hi="$(tail -1 <<<"$sorted")" \
    'BEGIN { s = r / b; e = p > 1 ? sprintf(" (efficiency %.0f%%)", 100 * s / p) : ""; printf "| %d | %d | %d | %d-%d | %.2f%s |\n", p, t, r, lo, hi, s, e }'
done
