"""The Hopper kernels' layout arithmetic (csrc/include/aim/attention_sm90.h), which the GPU code
calls, equals the formulas the numpy replays check against the PTX ISA (cuda/fragment_check_sm90_bwd.py).

A small host program (tests/cuda/sm90_layout_probe.cpp) includes the header and prints every value
the kernels use; this test builds it with the C++ compiler and compares line by line.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "cuda"))
import fragment_check_sm90_bwd as replay  # noqa: E402

COMPILER = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


@pytest.fixture(scope="module")
def probe_lines(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C++ compiler on PATH")
    exe = tmp_path_factory.mktemp("probe") / "sm90_layout_probe"
    subprocess.run([COMPILER, "-std=c++17", "-O1", "-I", str(ROOT / "csrc/include"),
                    str(Path(__file__).with_name("sm90_layout_probe.cpp")), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines()]


def expected(name, args):
    r = replay
    if name == "sw128_offset":
        return [r.sw128_offset(*args)]
    if name == "kmajor_start":
        return [r.kmajor_start(*args)]
    if name == "mnmajor_start":
        return [r.mnmajor_start(*args)]
    if name == "stmatrix_trans_row":
        return [r.stmatrix_trans_row(*args)]
    if name == "desc_sw128":
        return [r.desc_sw128(*args)]
    if name == "acc_row":
        return [r.acc_row(*args)]
    if name == "acc_col":
        return [r.acc_col(*args)]
    if name == "acc_to_a":
        return [r.acc_to_a_kstep(args[0]), r.acc_to_a_reg(*args)]
    if name == "key_mask":
        return [r.key_mask_word(args[0]), r.key_mask_shift(args[0])]
    if name == "pipeline":
        t = args[0]
        return [r.stage_of(t, 2), r.full_parity(t, 2), r.empty_parity(t, 2)]
    if name == "bwd_step":
        return list(r.bwd_step(*args))
    if name == "dq_tile":
        tiles = r.BwdTiles(args[0])
        return [tiles.dq_row0(args[1]), tiles.dq_col0(args[1])]
    if name == "tiles":
        t = r.BwdTiles(args[0])
        return [t.step_queries, t.steps_per_block, t.stages, t.threads, t.off_k, t.off_v, t.off_q, t.off_do,
                t.off_ds, t.off_lse, t.off_delta, t.off_mask, t.off_barriers, t.smem_bytes, t.full_arrivals,
                t.empty_arrivals, t.full_tx_bytes, t.kv_tx_bytes, t.q_bytes]
    raise AssertionError(f"unknown probe line {name}")


# How many leading numbers of each line are arguments (the rest are the header's values).
ARGS = {"sw128_offset": 3, "kmajor_start": 3, "mnmajor_start": 3, "stmatrix_trans_row": 4, "desc_sw128": 3,
        "acc_row": 2, "acc_col": 3, "acc_to_a": 2, "key_mask": 1, "pipeline": 1, "bwd_step": 2, "dq_tile": 2,
        "tiles": 1}


def test_header_matches_the_replayed_formulas(probe_lines):
    seen = set()
    for name, *numbers in probe_lines:
        values = [int(x) for x in numbers]
        args, got = values[: ARGS[name]], values[ARGS[name]:]
        assert got == expected(name, args), f"{name}{tuple(args)}: header {got}, replay {expected(name, args)}"
        seen.add(name)
    assert seen == set(ARGS), f"probe printed no {set(ARGS) - seen}"
