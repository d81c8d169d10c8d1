#!/usr/bin/env bash
# Installs FlashAttention-4 and xformers on a GPU machine that cannot download, from wheels carried
# there in the repository's ignored .whl/ folder:
#   .whl/wheels/*.whl           flash-attn-4, nvidia-cutlass-dsl (+ libs-base, libs-core),
#                               apache-tvm-ffi, torch-c-dlpack-ext, quack-kernels, xformers (cp312)
#   .whl/runtime/*.tar.xz       the CuTe DSL compiler runtime (nvidia-cutlass-dsl-libs-cu13, a 92 MB
#                               wheel, unpacked and recompressed with xz to 61 MiB) and SHA256SUMS
# The two folders are carried by two calls when they do not fit one (see benchmarks/GPU_WHEELS.md);
# a folder left by an earlier call on the same machine is used as it is.
# Everything goes into SITE (default /tmp/site); the last line printed is the PYTHONPATH to export.
# The CuTe DSL finds its Python packages through a .pth file, which PYTHONPATH does not read, so
# that folder is named in PYTHONPATH too.
# Usage: bash benchmarks/install_carried_wheels.sh [SITE]; export PYTHONPATH=<last line>
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=${1:-/tmp/site}
PY=${PYTHON:-python3}
mkdir -p "$SITE"
shopt -s nullglob
wheels=(.whl/wheels/*.whl)
runtimes=(.whl/runtime/*.tar.xz)
if ((${#wheels[@]})); then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" >&2
  echo "installed ${#wheels[@]} wheels into $SITE" >&2
else
  echo "no wheels in .whl/wheels" >&2
fi
# After pip: pip --target --upgrade replaces whole top-level folders, which would drop the runtime's
# files from the nvidia_cutlass_dsl folder the base wheel also writes; tar only adds files.
for archive in "${runtimes[@]}"; do
  (cd .whl/runtime && sha256sum --check --quiet SHA256SUMS) >&2
  xz -dc -T0 "$archive" | tar xf - -C "$SITE"
  echo "unpacked $(basename "$archive") into $SITE" >&2
done
echo "$SITE:$SITE/nvidia_cutlass_dsl/dsl_packages${PYTHONPATH:+:$PYTHONPATH}"
