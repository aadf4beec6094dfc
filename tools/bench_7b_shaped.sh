#!/usr/bin/env bash
# The 7B-shaped latency run behind docs/benchmarks-7b-shaped.md, end to end (issue 27):
#
#   bash tools/bench_7b_shaped.sh DIR [THREADS]      # from the repository root
#
# THREADS: threads per engine in the bench (default 1: on a shared 2-core machine a second
# spinning llama.cpp thread waits on descheduled peers; the exports use 2).
# 1. random-weight LLaRA-7B-shaped checkpoints at 1 and 2 LLM layers, 4 CLIP layers
#    (tools/make_7b_shaped.py) in DIR/orig-L{1,2} (kept if DIR already holds them);
# 2. their exports (compact, gguf + onnx-vision, q4_k_m; random-weight parity bounds) in
#    DIR/art-L{1,2} (kept if already exported);
# 3. `llara-edge bench latency --shaped ...`: every runner taught the same realistic answer,
#    JSON to docs/figures/bench/latency-7b-shaped.json, the page rendered from it to
#    docs/benchmarks-7b-shaped.md;
# 4. DIR's checkpoints and exports deleted (about 7 GB).
# Needs about 7 GB free in DIR and 10 GB of RAM (the exports' torch reference).
set -euo pipefail

DIR=${1:?usage: bash tools/bench_7b_shaped.sh DIR [THREADS]}
THREADS=${2:-1}
PY=${PYTHON:-.venv/bin/python}
CLI=${LLARA_EDGE:-.venv/bin/llara-edge}
mkdir -p "$DIR"
free -g | head -2
df -h "$DIR" | tail -1

points=()
for L in 1 2; do
  ckpt="$DIR/orig-L$L" art="$DIR/art-L$L"
  if [ ! -f "$ckpt/config.json" ]; then
    "$PY" tools/make_7b_shaped.py "$ckpt" --llm-layers "$L" --clip-layers 4 --overwrite
  fi
  if [ ! -f "$art/manifest.json" ]; then
    "$CLI" export "$ckpt" --out "$art" --frames 2 --max-new-tokens 24 --threads 2 \
      --thresholds export/llara_export/parity_thresholds_random.json --compact \
      --formats gguf,onnx-vision --quant q4_k_m --overwrite
  fi
  points+=(--shaped "$ckpt=$art")
done

"$CLI" bench latency "${points[@]}" --threads "$THREADS" --out docs/figures/bench \
  --md docs/benchmarks-7b-shaped.md

for L in 1 2; do
  rm -rf "$DIR/orig-L$L" "$DIR/art-L$L"
done
