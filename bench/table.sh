#!/usr/bin/env bash
# Every row of the speed table (docs/performance.md, issue 11): one JSON line per case from
# `pcmsim bench mvm` (ratio = sim / OpenBLAS sgemm of the same shape on the same threads,
# ratio_eigen = sim / Eigen's GEMM, ratio_per_gemm = sim / (gemms x one sgemm)), then the network
# evaluations against pcmsim's own FP32 path (bench_evaluate, slowdown).
# Usage: bench/table.sh [BUILD_DIR]   (env REPEATS, default 11)
set -euo pipefail
build="${1:-build}"
bin="$build/bin/pcmsim"
r="${REPEATS:-11}"
# row NAME REPEATS OPTIONS...
row() { local name="$1" rep="$2"; shift 2; printf '%-32s ' "$name"; "$bin" bench mvm --repeats "$rep" "$@"; }
row "512x512 b1024 1 thread" "$r" --threads 1
row "512x512 b1024 2 threads" "$r" --threads 2
row "512x512 batch 1" $((r * 20)) --threads 1 --batch 1
row "2048x2048 b256 2 threads" "$r" --threads 2 --rows 2048 --cols 2048 --batch 256
row "512^2 tile pcm_like read noise" "$r" --threads 1 --tile 512x512 --read-noise pcm_like --w-noise 0.02
row "bit-sliced 8b/4b + bit-serial" 3 --threads 1 --cell bit_sliced --weight-bits 8 --slice-bits 4 --b-in 1
row "bit-sliced 4 x 2b" "$r" --threads 1 --cell bit_sliced --weight-bits 8 --slice-bits 2
if [[ -x "$build/bin/bench_mvm" ]]; then  # the output-noise draws of the first row, per GEMM
  "$build/bin/bench_mvm" --benchmark_filter=NormalsPerGemm 2>/dev/null | grep -E 'BM_Normals'
fi
if [[ -x "$build/bin/bench_evaluate" ]]; then
  PCMSIM_SOURCE_DIR="$(pwd)" OMP_NUM_THREADS=2 "$build/bin/bench_evaluate" --benchmark_filter='/threads:2' \
      --benchmark_min_time=0.5 2>/dev/null | grep -E 'BM_Evaluate'
fi
