#!/usr/bin/env bash
# Downloads, on a machine that can reach PyPI, the wheels FlashAttention-4 and xformers need on the
# GPU machine (Python 3.12, x86_64, torch 2.11 with CUDA 13, no downloads there) into the ignored
# folder .whl/ of this repository, and recompresses the one large wheel so that each folder fits
# what one device call carries (64 MiB with the working tree):
#   .whl/wheels/   12.8 MiB: flash-attn-4, nvidia-cutlass-dsl, -libs-base, -libs-core, apache-tvm-ffi,
#                  torch-c-dlpack-ext, quack-kernels, xformers. The GPU machine already has their
#                  other requirements (einops, typing-extensions, cuda-bindings, cuda-pathfinder,
#                  protobuf, triton, numpy).
#   .whl/runtime/  60.6 MiB: nvidia-cutlass-dsl-libs-cu13 (the CuTe DSL compiler runtime, a 92 MB
#                  wheel, 225 MB unpacked) as tar.xz, and its SHA256SUMS.
# About 3 minutes of xz on 2 cores. Then, from a session that has the device tool, two calls in a
# row (the second within the 30 s the machine stays warm after the first):
#   1. carry=[".whl/runtime"], timeout_s=420, command=
#        "(cd .whl/runtime && sha256sum -c SHA256SUMS) && AIM_CUDA=on AIM_CUDA_ARCHITECTURES=90
#         python3 -m pip install -q --no-build-isolation --no-deps ."
#      (brings the runtime and builds the CUDA module, whose build/ folder the suite's build reuses)
#   2. carry=[".whl/wheels"], timeout_s=600, command=
#        "AIM_GPU_BUDGET_S=560 AIM_GPU_STAGES=backends bash benchmarks/gpu_suite.sh"
# Call 2 names only .whl/wheels, so .whl/runtime and build/ stay on the machine as call 1 left
# them; the suite installs both wheel folders into /tmp/site (benchmarks/install_carried_wheels.sh).
# If the machine went back between the calls, call 2's summary shows no "unpacked" step for the
# runtime and the flash rows are skipped: repeat both calls.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
platform=(--python-version 3.12 --implementation cp --only-binary=:all: --no-deps
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
mkdir -p .whl/wheels .whl/runtime .whl/download
$PY -m pip download -q "${platform[@]}" -d .whl/wheels \
  flash-attn-4==4.0.0b36 nvidia-cutlass-dsl==4.8.1 nvidia-cutlass-dsl-libs-base==4.8.1 \
  nvidia-cutlass-dsl-libs-core==4.8.1 apache-tvm-ffi==0.1.15.post2 torch-c-dlpack-ext==0.1.5 \
  quack-kernels==0.6.5 xformers==0.0.35
$PY -m pip download -q "${platform[@]}" -d .whl/download nvidia-cutlass-dsl-libs-cu13==4.8.1
for wheel in .whl/wheels/*.whl .whl/download/*.whl; do unzip -tq "$wheel" >/dev/null; done
unpacked=$(mktemp -d)
unzip -q .whl/download/nvidia_cutlass_dsl_libs_cu13-4.8.1-*.whl -d "$unpacked"
(cd "$unpacked" && tar cf - . | xz -9e -T2) > .whl/runtime/nvidia_cutlass_dsl_libs_cu13-4.8.1.tar.xz
rm -rf "$unpacked"
(cd .whl/runtime && sha256sum ./*.tar.xz > SHA256SUMS)
du -sh .whl/wheels .whl/runtime
