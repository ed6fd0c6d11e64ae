#!/bin/bash
# The `tr0n` tool on the text job's models, as a newcomer runs it (README,
# "Text prompts"): trains the README's translator, samples the ten class
# prompts ("a photo of a {class}", 100 samples each) from the translator's
# start with 0 steps, the default 10 steps at step 0.03, 0.3 and the default
# for neg_cosine (1), the default in float32 (the default precision is bf16 on
# a CPU with AVX512_BF16), and from the prior with the default flags; scores each
# with the job's evaluation CNN. Prints one table; the README's figures for the
# tool on text come from it.
#   benchmarks/tool_text_steps.sh [BUILD] [MODELS] [OUT]   (about 2 minutes, models cached)
# Needs the text job's models: run build/examples/fashion_text --models-dir models first.
set -euo pipefail
build=${1:-build}; models=${2:-models}; out=${3:-out_tool_text}
mkdir -p "$out"
tool=$build/tools/tr0n; job=$build/examples/fashion_mnist
M=(--generator "$models/generator.ts.pt" --encoder "$models/clip_image.ts.pt")
classes=(t-shirt trouser pullover dress coat sandal shirt sneaker bag "ankle boot")  # the job's class words
prompts=()
for c in "${classes[@]}"; do prompts+=(--prompt "a photo of a $c"); done
start=$(date +%s)
"$tool" train "${M[@]}" --latent-dim 16 --condition-transform l2 --condition-noise 0.14 --seed 0 \
  --out "$out/text_q.pt" >"$out/train.log" 2>&1
echo "translator trained in $(( $(date +%s) - start )) s"
printf '%-34s %9s %9s\n' "start, flags" accuracy diversity
run() {  # name, extra flags...
  local name=$1; shift
  "$tool" sample "${M[@]}" --translator "$out/text_q.pt" --text-encoder "$models/clip_text.ts.pt" "${prompts[@]}" \
    --samples-per-condition 100 --energy neg_cosine --seed 0 "$@" --out "$out/$name.pt" >/dev/null 2>&1
  local score
  score=$("$job" --models-dir "$models" --score "$out/$name.pt" --score-labels 0,1,2,3,4,5,6,7,8,9 2>/dev/null)
  printf '%-34s %9s %9s\n' "$name $*" \
    "$(sed 's/.*"accuracy":\([0-9.]*\).*/\1/' <<<"$score" | cut -c1-5)" \
    "$(sed 's/.*"diversity":\([0-9.]*\).*/\1/' <<<"$score" | cut -c1-5)"
}
run translator --steps 0
run translator --step-size 0.03
run translator --step-size 0.3
run translator
run translator --precision fp32
run prior --init prior
