"""Loading the native modules and turning tensors and choices into the plain arguments they take.

The modules never see a torch tensor (so one build works across torch versions) and never read
the environment: they take raw pointers, element strides, a dtype code, a kernel choice and a
stream handle. See ``csrc/include/aim/native_api.h`` for the C++ side of this contract and
``csrc/include/aim/native_codes.h`` for the codes (one numbering for both modules and every op).
"""

from __future__ import annotations

import contextlib
import importlib
from functools import cache
from types import ModuleType

import torch

from aim.errors import UsageError
from aim.ops.switches import kernel_switch

# aim::kFloat32 ... aim::kFloat64. Attention takes the first three, the value-map ops float32 and float64.
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.float64: 3}
# aim::KernelChoice: auto; portable (CPU "generic", CUDA "portable"); specialised (CPU "avx2", CUDA "sm90").
KERNEL_CODES = {"auto": 0, "portable": 1, "generic": 1, "avx2": 2, "sm90": 2}
SPECIALISED = 2
# aim::vmap::kCombineMax / kCombineSum: how render combines overlapping blobs.
COMBINE_CODES = {"max": 0, "sum": 1}

_modules: dict[str, ModuleType | None] = {}
_import_errors: dict[str, str] = {}


def native_module(device_type: str) -> ModuleType | None:
    """The native module for ``"cpu"`` or ``"cuda"``, or None when it was not built/loadable."""
    if device_type not in _modules:
        name = {"cpu": "aim._native_cpu", "cuda": "aim._native_cuda"}.get(device_type)
        module = None
        if name is not None:
            try:
                module = importlib.import_module(name)
            except ImportError as error:
                _import_errors[device_type] = str(error)
        _modules[device_type] = module
    return _modules[device_type]


def import_error(device_type: str) -> str:
    return _import_errors.get(device_type, "not built")


def bhnd(t: torch.Tensor) -> tuple[int, int, int, int]:
    """(data_ptr, stride_b, stride_h, stride_n) of a (B, H, N, D) tensor with contiguous last dim."""
    return (t.data_ptr(), t.stride(0), t.stride(1), t.stride(2))


def layout_args(num_tokens: int, layout_tensors: tuple[torch.Tensor, ...]) -> tuple[int, ...]:
    """The layout 9-tuple from :meth:`AttentionLayout.tensors` (q_ptr first, masks last)."""
    num_blocks = layout_tensors[0].numel() - 1
    return (num_tokens, num_blocks, *(t.data_ptr() for t in layout_tensors))


def stream_handle(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0


def require_native(device: torch.device) -> ModuleType:
    """The native module for ``device``, or a RuntimeError that says why it is missing."""
    module = native_module(device.type)
    if module is None:
        raise RuntimeError(f"aim: the native {device.type} module is not available: {import_error(device.type)}")
    return module


def kernel_code(device: torch.device, backward: bool) -> int:
    """The ``kernel`` argument for an attention pass on ``device``, from its switch
    (:mod:`aim.ops.switches`); a specialised kernel this machine lacks is a one-line error naming
    the variable."""
    switch = kernel_switch(device.type, backward)
    value = switch.value()
    code = KERNEL_CODES[value]
    if code == SPECIALISED:
        problem = _specialised_problem(device)
        if problem:
            raise UsageError(f"{switch.name}={value}: {problem}; set it to auto or {switch.choices[1]}")
    return code


def _specialised_problem(device: torch.device) -> str | None:
    module = require_native(device)
    if device.type == "cpu":
        return None if module.isa(0) == "avx2" else "this processor lacks AVX2, FMA or F16C"
    if not module.has_sm90_kernels:
        return "this build has no Hopper kernels (reinstall with AIM_CUDA_ARCHITECTURES including 90)"
    capability = _capability(device.index if device.index is not None else torch.cuda.current_device())
    return None if capability == (9, 0) else f"{device} is sm{capability[0]}{capability[1]}, not compute capability 9.0"


@cache
def _capability(index: int) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(index))


def device_guard(device: torch.device) -> contextlib.AbstractContextManager:
    """Makes ``device`` current so kernels launch on the caller's stream of that device."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
