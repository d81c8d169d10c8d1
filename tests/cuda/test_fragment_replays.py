"""The CUDA kernels' lane/fragment/descriptor bookkeeping, replayed in numpy (no GPU needed).

cuda/fragment_check.py (mma.sync kernels, the deterministic dQ pass), cuda/fragment_check_sm90.py
(the wgmma forward) and cuda/fragment_check_sm90_bwd.py (the Hopper backward: TMA, wgmma, stmatrix,
the mbarrier pipeline) emulate the PTX fragment layouts and check every address formula the kernels use against plain
matrix algebra; they keep the GPU-only code honest on machines without a GPU (shared/GPU.md).
"""

import subprocess
import sys
from pathlib import Path

import pytest

CUDA_DIR = Path(__file__).resolve().parents[2] / "cuda"


@pytest.mark.parametrize("script", ["fragment_check.py", "fragment_check_sm90.py", "fragment_check_sm90_bwd.py"])
def test_fragment_replay_passes(script):
    result = subprocess.run([sys.executable, str(CUDA_DIR / script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
