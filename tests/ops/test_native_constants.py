"""The numbers Python and the native modules must agree on, read from the C++ headers: the block
size, the dtype and kernel-choice codes (one numbering for both modules), the combine codes; and
the rule that only Python reads the environment switches."""

import re
from pathlib import Path

import torch

from aim.ops import block_map, switches
from aim.ops._native import COMBINE_CODES, DTYPE_CODES, KERNEL_CODES
from aim.ops.backend import CHOICES, AttentionBackend

ROOT = Path(__file__).parents[2]
INCLUDE = ROOT / "csrc/include/aim"


def int_constants(path: Path) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r"constexpr int (k\w+) = (\d+);", path.read_text())}


def native_sources():
    return [p for d in ("csrc", "cuda") for p in (ROOT / d).rglob("*") if p.suffix in (".h", ".cpp", ".cu", ".cuh")]


def test_dtype_codes_match_the_shared_header():
    codes = int_constants(INCLUDE / "native_codes.h")
    assert {k: v for k, v in codes.items() if k.startswith("kFloat") or k.startswith("kBFloat")} == {
        "kFloat32": DTYPE_CODES[torch.float32], "kFloat16": DTYPE_CODES[torch.float16],
        "kBFloat16": DTYPE_CODES[torch.bfloat16], "kFloat64": DTYPE_CODES[torch.float64]}


def test_one_dtype_numbering_across_the_native_modules():
    defining = [p.relative_to(ROOT).as_posix() for p in native_sources()
                if re.search(r"constexpr int kB?Float\d+ =", p.read_text())]
    assert defining == ["csrc/include/aim/native_codes.h"]


def test_kernel_choice_codes_match_the_shared_header():
    text = (INCLUDE / "native_codes.h").read_text()
    enum = dict(re.findall(r"\b(kAuto|kPortable|kSpecialised) = (\d+),", text))
    assert {name: int(code) for name, code in enum.items()} == {"kAuto": 0, "kPortable": 1, "kSpecialised": 2}
    assert KERNEL_CODES == {"auto": 0, "portable": 1, "generic": 1, "avx2": 2, "sm90": 2}
    for switch in (switches.CPU_ISA, switches.CUDA_FWD_KERNEL, switches.CUDA_BWD_KERNEL):
        assert [KERNEL_CODES[value] for value in switch.choices] == [0, 1, 2], switch.name


def test_block_size_matches_the_layout_header():
    codes = int_constants(INCLUDE / "attention_layout.h")
    assert codes["kLayoutBlock"] == block_map.BLOCK
    assert re.search(r"kMaskWordsPerRow = kLayoutBlock / 32;", (INCLUDE / "attention_layout.h").read_text())
    assert block_map.MASK_WORDS_PER_ROW == block_map.BLOCK // 32


def test_combine_codes_match_the_value_map_header():
    codes = int_constants(INCLUDE / "value_maps.h")
    assert {"max": codes["kCombineMax"], "sum": codes["kCombineSum"]} == COMBINE_CODES


def test_native_code_reads_no_environment():
    readers = [p.relative_to(ROOT).as_posix() for p in native_sources() if "getenv" in p.read_text()]
    assert readers == []


def test_python_reads_the_ops_switches_in_one_module():
    readers = [p.name for p in (ROOT / "python/aim/ops").glob("*.py") if "os.environ" in p.read_text()]
    assert readers == ["switches.py"]


def test_backend_choices_are_the_switch_values():
    assert CHOICES == switches.ATTENTION_BACKEND.choices == ("auto",) + tuple(b.value for b in AttentionBackend)
