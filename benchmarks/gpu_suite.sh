#!/usr/bin/env bash
# One command for a lent GPU session: build with CUDA, then, in priority
# order, the value-map CUDA tests, compute-sanitizer on them, the value-map benchmark, the attention
# CUDA tests (both forward kernels) and sanitizer, the backward kernels' tests and sanitizer (the
# Hopper and the portable backward, atomic and deterministic dQ), the attention benchmarks (default
# kernels, then the portable and the deterministic backward), training and model benchmarks, and
# Nsight Compute on the attention kernels and on the Hopper backward.
#
# A lease is short, so the suite runs inside a time budget (AIM_GPU_BUDGET_S seconds, default 1500):
# each stage gets its own limit or what is left of the budget, whichever is less, and stages that no
# longer fit are skipped and named in the summary. Logs go to a scratch folder and, at the end, into
# one archive under $OUT (the device tool returns at most 8 files); a short summary is printed last.
# AIM_GPU_STAGES picks stages after the build (default: all of value-maps attention attention-bwd
# attention-bench attention-bwd-bench train model ncu ncu-bwd). The stage `backends` (not in the default)
# installs FlashAttention-4 and xformers from wheels carried in .whl/ (benchmarks/install_carried_wheels.sh;
# how to carry them in two calls: benchmarks/fetch_gpu_wheels.sh), then tests and benchmarks every
# attention backend.
# Usage: AIM_GPU_BUDGET_S=400 [AIM_GPU_STAGES="value-maps train"] bash benchmarks/gpu_suite.sh [attention.py args]
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-/tmp/aim-gpu}
LOGS=$(mktemp -d /tmp/aim-gpu-logs.XXXX)
BUDGET=${AIM_GPU_BUDGET_S:-1500}
STAGES=" ${AIM_GPU_STAGES:-value-maps attention attention-bwd attention-bench attention-bwd-bench train model ncu ncu-bwd} "
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
summary=()
want() { [[ $STAGES == *" $1 "* ]]; }
stage() { echo "=== $1 ($(date +%T), $((BUDGET - SECONDS)) s left)"; }
record() { summary+=("$1: $2"); }
# limit N: N, or the budget left (less 20 s for packing up), whichever is less.
limit() { local left=$((BUDGET - SECONDS - 20)); echo $(($1 < left ? $1 : left)); }
# run NAME LIMIT LOG CMD...: run within its limit, keep the log, record its last line.
run() {
  local name=$1 secs; secs=$(limit "$2"); local log=$3; shift 3
  if ((secs < 10)); then record "$name" "skipped (budget spent)"; return; fi
  timeout "$secs" "$@" >"$LOGS/$log" 2>&1
  local rc=$?
  record "$name" "exit $rc$( ((rc == 124)) && echo " (hit its ${secs} s limit)"): $(grep -v '^\s*$' "$LOGS/$log" | tail -1)"
}
finish() {
  stage "summary"
  printf '%s\n' "${summary[@]}" | tee "$LOGS/summary.txt"
  tar czf "$OUT/gpu-logs.tar.gz" -C "$LOGS" .
  cp "$LOGS/summary.txt" "$OUT/summary.txt"
}

stage "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader | tee "$LOGS/device.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$LOGS/device.txt"

stage "build (AIM_CUDA=on, arch ${AIM_CUDA_ARCHITECTURES:=90})"
export AIM_CUDA=on AIM_CUDA_ARCHITECTURES
if ! timeout "$(limit 240)" $PY -m pip install --no-build-isolation --no-deps -v . >"$LOGS/build.log" 2>&1; then
  tail -40 "$LOGS/build.log"; record "build" "FAILED"; finish; exit 1
fi
grep -E "Compiling entry|Used [0-9]+ registers|spill" "$LOGS/build.log" >"$LOGS/ptxas.txt" || true
module=$(cd /tmp && $PY -c "import aim._native_cuda as m; print(m.__file__)")
record "build" "ok in ${SECONDS} s; HGMMA instructions in the module: $(cuobjdump -sass "$module" 2>/dev/null | grep -c HGMMA)"
cd /tmp  # import the installed package, not the source tree

if want value-maps; then
stage "value maps: tests, sanitizer, benchmark"
run "value-map tests" 150 tests-value-maps.log $PY -m pytest "$REPO/tests/ops/test_value_maps.py" -q -k cuda -p no:cacheprovider
tail -3 "$LOGS/tests-value-maps.log"
for tool in memcheck racecheck; do
  run "$tool value maps" 90 "sanitizer-$tool-value-maps.log" \
    compute-sanitizer --tool "$tool" --error-exitcode 3 $PY "$REPO/benchmarks/cuda_sanitize_value_maps.py"
done
run "value-map benchmark" 150 bench-value-maps.md $PY "$REPO/benchmarks/value_maps.py" --device cuda --no-record
fi

if want attention; then
stage "attention: tests, sanitizer"
run "attention tests (default kernels)" 180 tests-attention.log \
  $PY -m pytest "$REPO/tests/ops" "$REPO/tests/cuda" -q -k "cuda and not value_maps" -p no:cacheprovider
tail -3 "$LOGS/tests-attention.log"
AIM_CUDA_FWD_KERNEL=portable run "attention tests (portable forward)" 90 tests-attention-portable.log \
  $PY -m pytest "$REPO/tests/ops/test_attention.py" -q -k cuda -p no:cacheprovider
for tool in memcheck racecheck; do
  run "$tool attention" 90 "sanitizer-$tool-attention.log" \
    compute-sanitizer --tool "$tool" --error-exitcode 3 $PY "$REPO/benchmarks/cuda_attention_case.py"
done
fi

if want attention-bwd; then
stage "attention backward: both kernels (tests, sanitizer)"
record "backward SASS" "$(cuobjdump -sass "$module" 2>/dev/null | grep -cE 'UTMALDG') TMA loads, \
$(cuobjdump -sass "$module" 2>/dev/null | grep -c 'USETMAXREG') setmaxnreg, $(cuobjdump -sass "$module" 2>/dev/null | grep -c STSM) stmatrix"
# Both kernels x both dQ modes against the float64 reference, poisoned gradients, strided inputs
# (each test sets AIM_CUDA_BWD_KERNEL itself; sm90 there means an error, never a silent fallback).
run "backward tests (sm90 + portable, atomic + deterministic)" 240 tests-attention-bwd.log \
  $PY -m pytest "$REPO/tests/ops/test_attention.py" -q -p no:cacheprovider \
  -k "cuda_backward or cuda_native_backward or deterministic or kernel_choice"
tail -3 "$LOGS/tests-attention-bwd.log"
# Every other CUDA attention test with the Hopper backward forced (in "auto" a backward that
# cannot build its TMA maps falls back to the portable one; forced, that is an error).
AIM_CUDA_BWD_KERNEL=sm90 run "attention tests (AIM_CUDA_BWD_KERNEL=sm90)" 120 tests-attention-bwd-sm90.log \
  $PY -m pytest "$REPO/tests/ops/test_attention.py" -q -k cuda -p no:cacheprovider
# memcheck and racecheck on both backwards (atomic dQ), memcheck of the deterministic dQ pass,
# synccheck of the Hopper one's named barriers: the small ragged case, both dtypes and head dims.
sanitize() {  # sanitize TOOL KERNEL MODE
  local flag; flag=$([ "$3" = deterministic ] && echo --deterministic)
  AIM_CUDA_BWD_KERNEL=$2 run "$1 backward ($2, $3 dQ)" 90 "sanitizer-$1-bwd-$2-$3.log" \
    compute-sanitizer --tool "$1" --error-exitcode 3 $PY "$REPO/benchmarks/cuda_attention_case.py" $flag
}
for kernel in sm90 portable; do
  sanitize memcheck $kernel atomic
  sanitize racecheck $kernel atomic
  sanitize memcheck $kernel deterministic
done
sanitize synccheck sm90 atomic
fi

if want attention-bench; then
stage "attention benchmark"
run "attention benchmark" 180 bench-attention.md $PY "$REPO/benchmarks/attention.py" --device cuda --no-record "$@"
AIM_CUDA_FWD_KERNEL=portable run "attention benchmark (portable forward, 16k)" 60 bench-attention-portable.md \
  $PY "$REPO/benchmarks/attention.py" --device cuda --no-record --no-flex --tokens 16384
fi
if want attention-bwd-bench; then
stage "attention backward benchmark (forward+backward at 4k, 16k, 32k)"
# The default run (attention-bench) times the Hopper backward against FlexAttention (and fa4 where
# benchmarks/attention.py has it); these time the portable backward and the deterministic dQ pass
# in the same session, for the ratios.
AIM_CUDA_BWD_KERNEL=portable run "attention benchmark (portable backward)" 150 bench-attention-bwd-portable.md \
  $PY "$REPO/benchmarks/attention.py" --device cuda --no-record --no-flex --tokens 4096 16384 32768
run "attention benchmark (deterministic dQ)" 150 bench-attention-bwd-deterministic.md $PY -c "
import runpy, sys, torch
torch.use_deterministic_algorithms(True, warn_only=True)  # warn_only: SDPA's backwards have no deterministic mode
sys.path.insert(0, '$REPO/benchmarks')
sys.argv = ['attention.py', '--device', 'cuda', '--no-record', '--no-flex', '--tokens', '4096', '16384', '32768']
runpy.run_path('$REPO/benchmarks/attention.py', run_name='__main__')"
fi
want train && run "training benchmark (aim-1b)" 240 bench-train.md $PY "$REPO/benchmarks/train.py" --device cuda --no-record
if want model; then
run "model benchmark (aim-1b)" 120 bench-model-1b.md $PY "$REPO/benchmarks/model.py" --device cuda --presets aim-1b \
  --no-record
run "model benchmark (wan22-5b)" 120 bench-model-5b.md $PY "$REPO/benchmarks/model.py" --device cuda \
  --presets wan22-5b --backends native --no-record
fi

if want backends; then
stage "attention backends: carried wheels, tests of every backend, benchmarks per backend"
if [ -d "$REPO/.whl" ]; then
  if site=$(bash "$REPO/benchmarks/install_carried_wheels.sh" /tmp/site 2>"$LOGS/wheels.log"); then
    export PYTHONPATH=$site
    record "carried wheels" "ok: $(grep -E '^(installed|unpacked)' "$LOGS/wheels.log" | paste -sd';')"
  else
    record "carried wheels" "FAILED: $(tail -1 "$LOGS/wheels.log")"
  fi
fi
run "backend probe" 120 backends-probe.log \
  $PY -c "import torch; from aim.ops.backend import describe; print(describe(torch.device('cuda')))"
grep -E "flash|xformers" "$LOGS/backends-probe.log" | head -12
run "backend tests" 330 tests-backends.log \
  $PY -m pytest "$REPO/tests/ops/test_backends_gpu.py" -q -rs -p no:cacheprovider
tail -5 "$LOGS/tests-backends.log"
run "attention benchmark (every backend)" 150 bench-attention-backends.md \
  $PY "$REPO/benchmarks/attention.py" --device cuda --no-record --tokens 4096 16384
run "model benchmark (aim-1b, every backend)" 240 bench-model-backends.md \
  $PY "$REPO/benchmarks/model.py" --device cuda --presets aim-1b --repeats 3 --inference-repeats 2 --no-record
for table in bench-attention-backends.md bench-model-backends.md; do
  if [ -s "$LOGS/$table" ]; then echo "--- $table"; grep -E '^\||^###|skipped' "$LOGS/$table" | head -40; fi
done
fi

if want ncu; then
stage "Nsight Compute (16k tokens, bf16, 16 x 128)"
for kernel in default portable; do
  fwd_env=$([ $kernel = portable ] && echo portable || echo auto)
  AIM_CUDA_FWD_KERNEL=$fwd_env run "ncu ($kernel forward)" 120 "ncu-$kernel.txt" \
    ncu --clock-control none -k regex:attention --launch-count 3 --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section ComputeWorkloadAnalysis \
    $PY "$REPO/benchmarks/cuda_attention_case.py" --tokens 16384 --heads 16 --dtypes bfloat16 --head-dims 128
done
fi

if want ncu-bwd; then
stage "Nsight Compute: Hopper backward (16k tokens, bf16, 16 x 128)"
run "ncu (sm90 backward)" 150 ncu-bwd-sm90.txt \
  ncu --clock-control none -k regex:attention_bwd_sm90 --launch-count 2 --section SpeedOfLight --section Occupancy \
  --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section LaunchStats \
  $PY "$REPO/benchmarks/cuda_attention_case.py" --tokens 16384 --heads 16 --dtypes bfloat16 --head-dims 128
fi

for table in bench-value-maps.md bench-attention.md bench-attention-bwd-portable.md bench-attention-bwd-deterministic.md bench-train.md; do
  if [ -s "$LOGS/$table" ]; then echo "--- $table"; grep -E '^\||^###|GB/s' "$LOGS/$table" | head -40; fi
done
finish
