"""The environment switches of aim.ops (aim.ops.switches): defaults, checking, and the kernel code
each one gives the native bindings, for CPU and CUDA devices (the CUDA module's and device's
answers injected, so this runs without a GPU)."""

from types import SimpleNamespace

import pytest
import torch

from aim.errors import UsageError
from aim.ops import _native, switches

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")


@pytest.mark.parametrize("switch", switches.SWITCHES, ids=lambda s: s.name)
def test_unset_or_empty_is_the_default_and_case_does_not_matter(monkeypatch, switch):
    monkeypatch.delenv(switch.name, raising=False)
    assert switch.value() == switch.choices[0] == "auto"
    monkeypatch.setenv(switch.name, "  ")
    assert switch.value() == "auto"
    for choice in switch.choices:
        monkeypatch.setenv(switch.name, choice.upper())
        assert switch.value() == choice


@pytest.mark.parametrize("switch", switches.SWITCHES, ids=lambda s: s.name)
def test_a_bad_value_names_the_variable_and_the_values(monkeypatch, switch):
    monkeypatch.setenv(switch.name, "fastest")
    with pytest.raises(UsageError) as err:
        switch.value()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{switch.name}=fastest: expected ")
    assert all(choice in message for choice in switch.choices)


def fake_cuda_module(monkeypatch, has_sm90: bool, capability: tuple[int, int]):
    module = SimpleNamespace(has_sm90_kernels=has_sm90)
    monkeypatch.setattr(_native, "require_native", lambda device: module)
    monkeypatch.setattr(_native, "_capability", lambda index: capability)


@pytest.mark.parametrize("backward,variable", [(False, "AIM_CUDA_FWD_KERNEL"), (True, "AIM_CUDA_BWD_KERNEL")])
def test_cuda_kernel_codes(monkeypatch, backward, variable):
    other = "AIM_CUDA_FWD_KERNEL" if backward else "AIM_CUDA_BWD_KERNEL"
    monkeypatch.setenv(other, "bogus")  # the other pass's switch is not read
    fake_cuda_module(monkeypatch, has_sm90=True, capability=(9, 0))
    for value, code in (("auto", 0), ("portable", 1), ("sm90", 2)):
        monkeypatch.setenv(variable, value)
        assert _native.kernel_code(CUDA, backward) == code


@pytest.mark.parametrize(
    "has_sm90,capability,problem",
    [(False, (9, 0), "this build has no Hopper kernels"), (True, (8, 0), "cuda:0 is sm80, not compute capability 9.0"),
     (True, (10, 0), "sm100")],
)
def test_sm90_where_it_cannot_run_is_named(monkeypatch, has_sm90, capability, problem):
    fake_cuda_module(monkeypatch, has_sm90, capability)
    monkeypatch.setenv("AIM_CUDA_BWD_KERNEL", "sm90")
    with pytest.raises(UsageError, match=f"^AIM_CUDA_BWD_KERNEL=sm90: .*{problem}.*; set it to auto or portable$"):
        _native.kernel_code(CUDA, backward=True)
    monkeypatch.setenv("AIM_CUDA_BWD_KERNEL", "auto")
    assert _native.kernel_code(CUDA, backward=True) == 0  # auto falls back in the module itself


def test_cpu_kernel_codes(monkeypatch):
    monkeypatch.setenv("AIM_CUDA_FWD_KERNEL", "bogus")  # CUDA switches are not read for the CPU
    for value, code in (("auto", 0), ("generic", 1)):
        monkeypatch.setenv("AIM_CPU_ISA", value)
        assert _native.kernel_code(CPU, backward=False) == code
    monkeypatch.setattr(_native, "require_native", lambda device: SimpleNamespace(isa=lambda kernel: "generic"))
    monkeypatch.setenv("AIM_CPU_ISA", "avx2")
    with pytest.raises(UsageError, match="^AIM_CPU_ISA=avx2: this processor lacks AVX2, FMA or F16C; set it to auto "
                                         "or generic$"):
        _native.kernel_code(CPU, backward=True)
    monkeypatch.setattr(_native, "require_native", lambda device: SimpleNamespace(isa=lambda kernel: "avx2"))
    assert _native.kernel_code(CPU, backward=True) == 2
