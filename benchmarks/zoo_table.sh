#!/bin/bash
# Seconds per step and peak RSS on the real-size zoo at 1, 8 and 32 chains,
# through the library (zoo_probe: one batch) and through the tool (`tr0n
# sample`, its default --memory-budget of 512 MiB, chunks sized by the probe),
# at both precisions (benchmarks/README.md, "The real-size zoo"). A tool
# step's time is (wall(--steps S) - wall(--steps 0)) / S, both runs side by
# side; peak RSS is the --steps S run's (/usr/bin/time's maximum resident set).
#   python3 scripts/export-zoo.py ZOO        # once, about 1 minute
#   benchmarks/zoo_table.sh ZOO [BUILD_DIR] [STEPS]   (about 20 minutes on 2 cores at STEPS=1;
#   PRECISIONS=bf16 for one precision; TOOL_ONLY=1 skips the library's one-batch runs, which
#   take 13 GB and most of the time at 32 chains)
set -euo pipefail
zoo=$1
build=${2:-build}
steps=${3:-3}
tool=$build/tools/tr0n
probe=$build/benchmarks/zoo_probe
"${PYTHON:-/usr/bin/python3}" -c "import torch; torch.manual_seed(0); torch.save(torch.nn.functional.normalize(torch.randn(1, 512), dim=1), '$zoo/condition.pt')"
models=(--generator "$zoo/stylegan.pt" --encoder "$zoo/clip_image.pt" --latent-dim 512
        --generator-range -1:1 --encoder-size 224 --encoder-normalize clip)
wall_rss() {  # prints "seconds peak_MB" of a tool run
  /usr/bin/time -f "%e %M" -o /tmp/zoo_table.time "$tool" sample "${models[@]}" "$@" >/dev/null 2>/tmp/zoo_table.err ||
    { cat /tmp/zoo_table.err; exit 1; }
  awk '{printf "%s %.0f\n", $1, $2 / 1024}' /tmp/zoo_table.time
}
echo "| chains | precision | library s/step | library peak MB | tool s/step | tool peak MB | tool chains a batch |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for precision in ${PRECISIONS:-fp32 bf16}; do
  for chains in 1 8 32; do
    lib_step=-; lib_rss=-
    [ -n "${TOOL_ONLY:-}" ] || read -r _ _ lib_step lib_rss < <("$probe" "$zoo" "$chains" "$steps" "$precision")
    common=(--conditions "$zoo/condition.pt" --samples-per-condition "$chains" --init prior --energy neg_cosine
            --seed 1 --precision "$precision" --out /tmp/zoo_table.pt)
    read -r t0 _ < <(wall_rss "${common[@]}" --steps 0)
    read -r ts rss < <(wall_rss "${common[@]}" --steps "$steps")
    batch=$(grep -o '[0-9]* chains a batch' /tmp/zoo_table.err | cut -d' ' -f1)
    step=$(awk -v a="$ts" -v b="$t0" -v s="$steps" 'BEGIN {printf "%.2f", (a - b) / s}')
    echo "| $chains | $precision | $lib_step | $lib_rss | $step | $rss | $batch |"
  done
done
