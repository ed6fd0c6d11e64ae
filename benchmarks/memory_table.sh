#!/bin/bash
# Peak resident memory against the number of samples, without and with
# chunking (benchmarks/README.md, "Memory"). About 4 minutes on 2 cores.
#   benchmarks/memory_table.sh [BUILD_DIR]   (default: build)
set -euo pipefail
probe=${1:-build}/benchmarks/memory_probe
echo "samples max_batch mode peak_MB seconds"
for n in 1000 10000 100000; do
  "$probe" "$n" 0 keep
  "$probe" "$n" 4096 keep
  "$probe" "$n" 4096 stream
done
