"""Input checks of the attention entry points: :func:`aim.ops.attention` and the registered ops
``torch.ops.aim.block_sparse_attention_fwd`` / ``_bwd``, which anyone can call directly.

Everything here reads tensor metadata only (shape, dtype, device, strides), so it adds no device
synchronisation; the layout's values are checked by :func:`aim.ops.block_map.require_block_map`
(on the CPU, once per layout). Every problem is a one-line :class:`~aim.errors.UsageError` (a
``TypeError`` where an argument is not a tensor at all).
"""

from __future__ import annotations

import torch

from aim.errors import UsageError
from aim.ops.backend import NATIVE_DTYPES, NATIVE_HEAD_DIMS

Tensor = torch.Tensor
ATTENTION_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
DEVICES = ("cpu", "cuda")


def check_qkv(where: str, q: Tensor, k: Tensor, v: Tensor) -> None:
    """q, k, v: tensors of one shape (B, heads, tokens, head_dim), dtype and device, not empty."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise UsageError(f"{where}: {name} must be (batch, heads, tokens, head_dim), got shape {tuple(t.shape)}")
        if t.dtype not in ATTENTION_DTYPES:
            raise UsageError(f"{where}: {name} has unsupported dtype {t.dtype} (float32, float16, bfloat16)")
    if not (q.shape == k.shape == v.shape):
        raise UsageError(f"{where}: q, k, v shapes differ: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise UsageError(f"{where}: q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise UsageError(f"{where}: q, k, v are on different devices: {q.device}, {k.device}, {v.device}")
    if q.device.type not in DEVICES:
        raise UsageError(f"{where}: unsupported device {q.device}")
    if q.numel() == 0:
        raise UsageError(f"{where}: empty input of shape {tuple(q.shape)}")


def check_native_qkv(where: str, q: Tensor, k: Tensor, v: Tensor) -> None:
    """:func:`check_qkv`, and a dtype and head_dim the native kernel of q's device takes."""
    check_qkv(where, q, k, v)
    device = q.device.type
    if q.dtype not in NATIVE_DTYPES[device]:
        names = ", ".join(str(d).removeprefix("torch.") for d in NATIVE_DTYPES[device])
        raise UsageError(f"{where}: the native {device} kernel takes {names}, not {q.dtype}")
    if q.shape[-1] not in NATIVE_HEAD_DIMS[device]:
        dims = NATIVE_HEAD_DIMS[device]
        span = f"1..{dims[-1]}" if isinstance(dims, range) else ", ".join(map(str, dims))
        raise UsageError(f"{where}: the native {device} kernel takes head_dim {span}, not {q.shape[-1]}")


def check_like(where: str, q: Tensor, **tensors: Tensor) -> None:
    """Each of ``tensors`` has q's shape, dtype and device (the backward's out and dout)."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.shape != q.shape or t.dtype != q.dtype or t.device != q.device:
            raise UsageError(f"{where}: {name} must be like q ({tuple(q.shape)} {q.dtype} on {q.device}), got "
                             f"{tuple(t.shape)} {t.dtype} on {t.device}")


def check_lse(where: str, q: Tensor, lse: Tensor) -> None:
    """The forward's log-sum-exp: float32 (B, heads, tokens) on q's device."""
    if not isinstance(lse, torch.Tensor) or lse.dtype != torch.float32 or tuple(lse.shape) != tuple(q.shape[:3]) \
            or lse.device != q.device:
        got = f"{tuple(lse.shape)} {lse.dtype} on {lse.device}" if isinstance(lse, torch.Tensor) else type(lse).__name__
        raise UsageError(f"{where}: lse must be the forward's float32 {tuple(q.shape[:3])} on {q.device}, got {got}")
