"""One place that decides which implementation runs attention, with a scoped and an environment override.

A caller's scope (``with attention_backend("flex"): ...``, which ``train.attention_backend``
uses), else ``AIM_ATTENTION_BACKEND`` (read in :mod:`aim.ops.switches`), picks the implementation
of the shared intent-causal attention (:func:`aim.ops.attention`):

* ``native``: aim's C++/CUDA block-sparse kernels (CPU: every dtype and head_dim 1..256; CUDA:
  float16/bfloat16 at head_dim 64 and 128);
* ``flash``: FlashAttention-4 (package ``flash-attn-4``, module ``flash_attn.cute``) on our block
  lists (sm90 and sm100; float16/bfloat16; head_dim 8..128 in steps of 8, where its tiles are
  128 x 128 like ours);
* ``flex``: FlexAttention, compiled, with the identical BlockMask (CPU: forward only, since Flex
  has no CPU backward; CUDA needs Triton);
* ``xformers``: ``xformers.ops.memory_efficient_attention`` with an attention bias (CUDA only);
* ``sdpa``: PyTorch's scaled_dot_product_attention with the dense mask (always runs);
* ``auto`` (default): native where it runs the input, else the fastest installed backend that
  does (flash, then flex, then xformers), else sdpa.

The text cross-attention (:func:`aim.ops.dense_attention`) has no mask and its own, shorter
list: ``flash`` (FlashAttention-4's dense kernel on sm90/sm100, else the classic ``flash-attn``
2.x on sm80+), ``xformers`` and ``sdpa``; ``auto``, ``native`` and ``flex`` let it take the first
of those that runs the input.

An explicit choice that cannot run the input is a one-line error naming what is missing (package,
GPU architecture, dtype, head_dim) and where the choice came from. Each choice is logged once on
the ``aim`` logger, with why. What is installed and which GPU is there is a :class:`Platform`;
tests pass their own.

Under ``torch.compile`` the resolver runs once, while tracing, and its answer is a constant of
the compiled graph: the scope (or variable) in force at trace time decides, and a later change
does not recompile that graph.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Callable, Mapping

import torch

from aim.errors import UsageError
from aim.ops import switches
from aim.ops._native import import_error, native_module

logger = logging.getLogger("aim")

ENV_VAR = switches.ATTENTION_BACKEND.name


class AttentionBackend(str, enum.Enum):
    NATIVE = "native"
    FLASH = "flash"
    FLEX = "flex"
    XFORMERS = "xformers"
    SDPA = "sdpa"


CHOICES = switches.ATTENTION_BACKEND.choices  # "auto" and every AttentionBackend value
# auto's order after native: block-sparse kernels that skip empty blocks first, then the dense-bias one.
_FASTEST_FIRST = (AttentionBackend.FLASH, AttentionBackend.FLEX, AttentionBackend.XFORMERS)
# The dense (cross-attention) backends, fastest first.
_DENSE_ORDER = (AttentionBackend.FLASH, AttentionBackend.XFORMERS, AttentionBackend.SDPA)

# What each optional package is imported as, and the pip install that brings it.
PACKAGES = {
    "flash_attn.cute": "pip install 'aim[flash]' (flash-attn-4)",
    "flash_attn": "flash-attn 2.x, built on the GPU machine (pip install flash-attn --no-build-isolation)",
    "xformers": "pip install 'aim[xformers]'",
    "triton": "a CUDA build of PyTorch ships it",
}

NATIVE_DTYPES = {
    "cpu": (torch.float32, torch.float16, torch.bfloat16),
    "cuda": (torch.float16, torch.bfloat16),
}
# Head dims the native kernels take: the CUDA kernels are instantiated for 64 and 128 only.
NATIVE_HEAD_DIMS = {"cpu": range(1, 257), "cuda": (64, 128)}
HALF_DTYPES = (torch.float16, torch.bfloat16)
FLASH_ARCHS = (9, 10)  # FlashAttention-4's block-sparse kernels: sm90 (Hopper) and sm100 (Blackwell)
FLASH2_MIN_ARCH = 8


@dataclass(frozen=True)
class Platform:
    """What this process can run attention with on one device.

    ``native``: per device type, None when the native module loads, else why not. ``packages``:
    per import name of :data:`PACKAGES`, None when it imports and works, else why not.
    ``cuda_capability``: the CUDA device's (major, minor), None on a CPU.
    """

    native: Mapping[str, str | None] = field(default_factory=dict)
    packages: Mapping[str, str | None] = field(default_factory=dict)
    cuda_capability: tuple[int, int] | None = None

    def missing(self, package: str) -> str | None:
        """Why ``package`` cannot be used (None when it can)."""
        return self.packages.get(package, f"{package} is not installed")


@dataclass(frozen=True)
class AttentionInput:
    """The properties of an attention call that decide which backends can run it."""

    device_type: str
    dtype: torch.dtype
    head_dim: int
    requires_grad: bool = False

    def __str__(self) -> str:
        grad = ", with gradients" if self.requires_grad else ""
        return f"{self.device_type} {str(self.dtype).removeprefix('torch.')} head_dim {self.head_dim}{grad}"


# (choice, where it came from) of the innermost attention_backend scope with a choice, if any.
_scoped: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("aim_attention_backend", default=None)


@contextlib.contextmanager
def attention_backend(name: str, source: str = "attention_backend") -> Iterator[None]:
    """Run the attention of the code inside with backend ``name`` (one of :data:`CHOICES`),
    without touching the environment: the choice belongs to this thread or task and ends with
    the block. ``"auto"`` makes no choice (an enclosing scope, then ``AIM_ATTENTION_BACKEND``,
    then auto decide). ``source`` names the setting in messages (``train.attention_backend``).
    """
    value = str(name).strip().lower()
    if value not in CHOICES:
        raise UsageError(f"{source}={name}: expected one of {', '.join(CHOICES)}")
    if value == "auto":
        yield
        return
    token = _scoped.set((value, source))
    try:
        yield
    finally:
        _scoped.reset(token)


def requested_backend() -> tuple[str, str]:
    """(choice, where it came from): the innermost scope's, else the environment variable's."""
    return _scoped.get() or (switches.ATTENTION_BACKEND.value(), ENV_VAR)


def why_not(backend: AttentionBackend, inp: AttentionInput, platform: Platform) -> str | None:
    """Why ``backend`` cannot run the block-sparse attention ``inp`` here (None when it can)."""
    return _SPARSE_CHECKS[backend](inp, platform)


def why_not_dense(backend: AttentionBackend, inp: AttentionInput, platform: Platform) -> str | None:
    """Why ``backend`` cannot run an unmasked attention ``inp`` here (None when it can)."""
    if backend is AttentionBackend.FLASH:
        return _flash_dense_problem(inp, platform)
    if backend in (AttentionBackend.XFORMERS, AttentionBackend.SDPA):
        return _SPARSE_CHECKS[backend](inp, platform)
    return f"{backend.value} has no dense attention"


def resolve_attention_backend(
    device: torch.device, dtype: torch.dtype, head_dim: int, requires_grad: bool = False,
    platform: Platform | None = None,
) -> AttentionBackend:
    """The backend that runs the shared (block-sparse) attention for this input."""
    order = (AttentionBackend.NATIVE, *_FASTEST_FIRST, AttentionBackend.SDPA)
    return _resolve("attention", why_not, order, tuple(AttentionBackend), device, dtype, head_dim, requires_grad,
                    platform)


def resolve_dense_backend(
    device: torch.device, dtype: torch.dtype, head_dim: int, requires_grad: bool = False,
    platform: Platform | None = None,
) -> AttentionBackend:
    """The backend that runs an unmasked attention (the text cross-attention) for this input;
    a requested backend without a dense kernel (native, flex) leaves the choice to auto."""
    return _resolve("cross-attention", why_not_dense, _DENSE_ORDER, _DENSE_ORDER, device, dtype, head_dim,
                    requires_grad, platform)


# Under torch.compile the choice is made once, while tracing, and stays in the compiled graph.
@torch.compiler.assume_constant_result
def _resolve(what: str, check: Callable, auto_order, explicit, device, dtype, head_dim, requires_grad,
             platform: Platform | None) -> AttentionBackend:
    inp = AttentionInput(torch.device(device).type, dtype, int(head_dim), bool(requires_grad))
    platform = detect_platform(torch.device(device)) if platform is None else platform
    requested, source = requested_backend()
    if requested == "auto" or AttentionBackend(requested) not in explicit:
        return _first_that_runs(what, auto_order, check, inp, platform)
    choice = AttentionBackend(requested)
    problem = check(choice, inp, platform)
    if problem:
        raise UsageError(f"{source}={requested} cannot run {what} on {inp}: {problem}")
    _announce(what, choice, inp, f"chosen by {source}")
    return choice


def _first_that_runs(what: str, order, check: Callable, inp: AttentionInput, platform: Platform) -> AttentionBackend:
    skipped = []
    for backend in order:
        problem = check(backend, inp, platform)
        if problem is None:
            _announce(what, backend, inp, "auto" + "".join(f"; {s}" for s in skipped))
            return backend
        skipped.append(f"not {backend.value}: {problem}")
    raise AssertionError("sdpa runs every input")  # pragma: no cover


_announced: set[tuple] = set()


def _announce(what: str, backend: AttentionBackend, inp: AttentionInput, why: str) -> None:
    key = (what, backend, inp, why)
    if key not in _announced:
        _announced.add(key)
        logger.info("aim %s backend: %s for %s (%s)", what, backend.value, inp, why)


# ---------------------------------------------------------------------------------- capabilities
def _native_problem(inp: AttentionInput, platform: Platform) -> str | None:
    dtypes, head_dims = NATIVE_DTYPES.get(inp.device_type), NATIVE_HEAD_DIMS.get(inp.device_type)
    if dtypes is None:
        return f"the native kernels do not run on {inp.device_type}"
    if inp.dtype not in dtypes:
        return f"the native {inp.device_type} kernel does not take {inp.dtype} (supported: {_names(dtypes)})"
    if inp.head_dim not in head_dims:
        return f"the native {inp.device_type} kernel does not take head_dim {inp.head_dim} (supported: {_span(head_dims)})"
    reason = platform.native.get(inp.device_type, "not built")
    if reason is not None:
        return (f"the native {inp.device_type} module is not available ({reason}); reinstall with a CUDA compiler "
                "on PATH (AIM_CUDA=on pip install .)")
    return None


def _flash_problem(inp: AttentionInput, platform: Platform) -> str | None:
    return _flash4_problem(inp, platform, "FlashAttention-4's block-sparse kernel", range(8, 129, 8))


def _flash4_problem(inp: AttentionInput, platform: Platform, what: str, head_dims) -> str | None:
    if inp.device_type != "cuda":
        return f"{what} runs on CUDA only"
    if inp.dtype not in HALF_DTYPES:
        return f"{what} takes float16/bfloat16, not {inp.dtype}"
    if inp.head_dim not in head_dims:
        return f"{what} takes head_dim {_span(head_dims)}, not {inp.head_dim}"
    arch = platform.cuda_capability
    if arch is None or arch[0] not in FLASH_ARCHS:
        return f"{what} needs an sm90 or sm100 GPU, this one is {_arch(arch)}"
    missing = platform.missing("flash_attn.cute")
    return f"{missing} ({PACKAGES['flash_attn.cute']})" if missing else None


def flash4_dense_problem(inp: AttentionInput, platform: Platform) -> str | None:
    """Why FlashAttention-4's dense kernel cannot run ``inp`` (head_dim up to 256 on sm90, 128 on sm100)."""
    head_dims = range(8, 257 if _arch_major(platform) == 9 else 129, 8)
    return _flash4_problem(inp, platform, "FlashAttention-4", head_dims)


def _flash_dense_problem(inp: AttentionInput, platform: Platform) -> str | None:
    """FlashAttention-4's dense kernel where it runs, else the classic flash-attn 2.x."""
    fa4 = flash4_dense_problem(inp, platform)
    if fa4 is None:
        return None
    arch = platform.cuda_capability
    if inp.device_type == "cuda" and inp.dtype in HALF_DTYPES and inp.head_dim <= 256 and arch and arch[0] >= FLASH2_MIN_ARCH:
        missing = platform.missing("flash_attn")
        if missing is None:
            return None
        return f"{fa4}; and {missing} ({PACKAGES['flash_attn']})"
    return fa4


def _flex_problem(inp: AttentionInput, platform: Platform) -> str | None:
    if inp.device_type == "cpu":
        return "FlexAttention has no backward on the CPU" if inp.requires_grad else None
    if inp.device_type != "cuda":
        return f"FlexAttention does not run on {inp.device_type}"
    if inp.head_dim < 16 or inp.head_dim & (inp.head_dim - 1):
        return f"FlexAttention's Triton kernel takes power-of-two head_dim >= 16, not {inp.head_dim}"
    missing = platform.missing("triton")
    return f"FlexAttention on CUDA needs Triton: {missing}" if missing else None


def _xformers_problem(inp: AttentionInput, platform: Platform) -> str | None:
    if inp.device_type != "cuda":
        return "xformers runs on CUDA only"
    missing = platform.missing("xformers")
    return f"{missing} ({PACKAGES['xformers']})" if missing else None


_SPARSE_CHECKS: dict[AttentionBackend, Callable[[AttentionInput, Platform], str | None]] = {
    AttentionBackend.NATIVE: _native_problem,
    AttentionBackend.FLASH: _flash_problem,
    AttentionBackend.FLEX: _flex_problem,
    AttentionBackend.XFORMERS: _xformers_problem,
    AttentionBackend.SDPA: lambda inp, platform: None,
}


def _names(dtypes) -> str:
    return ", ".join(str(d).removeprefix("torch.") for d in dtypes)


def _span(values) -> str:
    if isinstance(values, range):
        step = f" in steps of {values.step}" if values.step > 1 else ""
        return f"{values.start}..{values[-1]}{step}"
    return ", ".join(str(v) for v in values)


def _arch(capability: tuple[int, int] | None) -> str:
    return "no GPU" if capability is None else f"sm{capability[0]}{capability[1]}"


def _arch_major(platform: Platform) -> int | None:
    return None if platform.cuda_capability is None else platform.cuda_capability[0]


# ---------------------------------------------------------------------------------- detection
def detect_platform(device: torch.device) -> Platform:
    """What this process has for ``device`` (packages are probed once, and only for CUDA devices)."""
    return _detect(device.type, device.index if device.type == "cuda" else None)


@cache
def _detect(device_type: str, index: int | None) -> Platform:
    native = {device_type: None if native_module(device_type) is not None else import_error(device_type)}
    if device_type != "cuda":
        return Platform(native=native)
    capability = torch.cuda.get_device_capability(index)
    return Platform(native=native, packages={name: _package_problem(name) for name in PACKAGES},
                    cuda_capability=tuple(capability))


def _package_problem(name: str) -> str | None:
    try:
        module = importlib.import_module(name)
    except Exception as err:  # a broken optional install fails in many ways (OSError, RuntimeError, ...)
        return f"{name} does not import ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    if name == "xformers" and not getattr(module, "_has_cpp_library", False):
        return "xformers imports but its compiled kernels do not load (built for another torch?)"
    if name == "flash_attn" and not hasattr(module, "flash_attn_func"):
        return "flash_attn is installed without its 2.x kernels (flash_attn_func)"
    return None


def describe(device: torch.device, head_dims=(16, 64, 128), dtype: torch.dtype = torch.bfloat16) -> str:
    """Which backend runs what on ``device``, one line per backend and head_dim: for a log or a user."""
    platform = detect_platform(device)
    packages = ", ".join(f"{name} {'yes' if problem is None else 'no'}" for name, problem in platform.packages.items())
    lines = [f"{device} ({_arch(platform.cuda_capability)}); optional packages: {packages or 'probed on CUDA only'}"]
    for head_dim in head_dims:
        inp = AttentionInput(device.type, dtype, head_dim, requires_grad=True)
        for backend in AttentionBackend:
            for what, check in (("attention", why_not), ("cross-attention", why_not_dense)):
                problem = check(backend, inp, platform)
                if not (what == "cross-attention" and backend not in _DENSE_ORDER):
                    lines.append(f"  {what} {backend.value} at {inp}: {'runs' if problem is None else problem}")
    return "\n".join(lines)
