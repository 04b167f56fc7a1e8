#!/usr/bin/env bash
# GPU figures at real sizes, random weights, no download (benchmarks/bench_gpu.py has the details).
#
#   bash benchmarks/bench_gpu.sh            # on the GPU machine: Qwen2-VL-2B and LLaVA-1.5-7B shapes, < 8 minutes
#   bash benchmarks/bench_gpu.sh --toy --rows 8 --batch-size 4   # the same script at toy size (CPU check)
#
# Prints one JSON object (also written to benchmarks/gpu_results.json unless OUT is set).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
OUT="${OUT:-benchmarks/gpu_results.json}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >&2 2>/dev/null || echo "no GPU: running on the CPU" >&2
# 7.5 minutes at most: the figures must come back even from a slow machine.
timeout 450 python benchmarks/bench_gpu.py "$@" | tee "$OUT"
