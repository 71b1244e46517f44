#!/usr/bin/env bash
# Issue 19's GPU check, at most ~8 minutes on one GPU, nothing downloaded:
#   benchmarks/gpu/run.sh [OUT_DIR]        (default docs/gpu)
# 1. the CUDA-path tests (tests/test_cuda_paths.py on cuda and cpu, tests/test_selective_scan.py), <= 150 s
# 2. benchmarks/gpu/gpu_bench.py: peak memory of a swinir-b and a serpent-l training step at 256 and
#    512 px, inference latency at 512 px and training throughput on 128-px crops of serpent-t/b/l,
#    nafnet-t, swinir-t, swinir-b; stops starting cases after 270 s, killed at 330 s.
# Writes OUT_DIR/cuda_tests.txt, OUT_DIR/gpu_bench.{csv,md}. Exit status: the tests' (the report is written either way).
set -u
cd "$(dirname "$0")/../.."
OUT="${1:-docs/gpu}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
timeout 150 "$PY" -m pytest tests/test_cuda_paths.py tests/test_selective_scan.py -q -rs -p no:cacheprovider \
    > "$OUT/cuda_tests.txt" 2>&1
tests_rc=$?
tail -n 5 "$OUT/cuda_tests.txt"
timeout 330 "$PY" benchmarks/gpu/gpu_bench.py --device cuda --out "$OUT" --budget-s 270
echo "bench exit status $?; tests exit status $tests_rc; report in $OUT"
exit "$tests_rc"
