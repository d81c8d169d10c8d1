"""``aim.ops.attention``: block-sparse masked self-attention over a compiled layout.

One entry point for every backend (:mod:`aim.ops.backend` picks one per input: aim's native
kernels, FlashAttention-4, FlexAttention, xformers or SDPA with the dense mask). The native
kernels (C++ on CPU, CUDA on GPU) run through two ``torch.library`` custom ops,
``aim::block_sparse_attention_fwd`` and ``aim::block_sparse_attention_bwd``, tied together by
``register_autograd`` so gradients and ``torch.compile`` work. Inputs are checked here, in
Python (the public function and the registered ops alike, :mod:`aim.ops.attention_checks`), so
bad input raises a one-line :class:`~aim.errors.UsageError` before any kernel runs.
"""

from __future__ import annotations

import torch

from aim.errors import UsageError
from aim.ops._native import DTYPE_CODES, bhnd, device_guard, kernel_code, layout_args, require_native, stream_handle
from aim.ops.attention_checks import check_like, check_lse, check_native_qkv, check_qkv
from aim.ops.backend import AttentionBackend, resolve_attention_backend
from aim.ops.block_map import check_block_map, require_block_map
from aim.ops.flash_backend import flash_sparse_attention
from aim.ops.flex_backend import flex_sparse_attention
from aim.ops.layout import AttentionLayout
from aim.ops.sdpa_backend import sdpa_sparse_attention
from aim.ops.softmax_scale import checked_scale
from aim.ops.xformers_backend import xformers_sparse_attention

Tensor = torch.Tensor
_WHERE = "aim.ops.attention"
_FWD = "torch.ops.aim.block_sparse_attention_fwd"
_BWD = "torch.ops.aim.block_sparse_attention_bwd"


def attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float | None = None) -> Tensor:
    """softmax(scale * q k^T, masked by ``layout``) v for q, k, v of shape (B, heads, tokens, head_dim).

    ``layout`` (an :class:`AttentionLayout` built for ``tokens``) is shared by the whole batch;
    pack variable-length samples into one sequence and let the layout keep them apart. A query
    that sees no key gets a zero output. ``scale`` (finite, > 0) defaults to 1/sqrt(head_dim).
    """
    scale = _check_inputs(q, k, v, layout, scale)
    requires_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    backend = resolve_attention_backend(q.device, q.dtype, q.shape[-1], requires_grad)
    return _RUN[backend](q, k, v, layout.to(q.device), scale)


def attention_with(backend: AttentionBackend, q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout,
                   scale: float | None = None) -> Tensor:
    """:func:`attention` run by ``backend`` without asking the resolver (benchmarks compare them
    side by side); the caller makes sure ``backend`` can run the input."""
    scale = _check_inputs(q, k, v, layout, scale)
    return _RUN[AttentionBackend(backend)](q, k, v, layout.to(q.device), scale)


def _native_attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float) -> Tensor:
    out, _ = torch.ops.aim.block_sparse_attention_fwd(q, k, v, *layout.tensors(), scale)
    return out


_RUN = {
    AttentionBackend.NATIVE: _native_attention,
    AttentionBackend.FLASH: flash_sparse_attention,
    AttentionBackend.FLEX: flex_sparse_attention,
    AttentionBackend.XFORMERS: xformers_sparse_attention,
    AttentionBackend.SDPA: sdpa_sparse_attention,
}


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float | None) -> float:
    """Checks what every backend needs; returns the scale to use."""
    check_qkv(_WHERE, q, k, v)
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.stride(-1) != 1:
            raise UsageError(
                f"{_WHERE}: {name} is non-contiguous in head_dim (strides {tuple(t.stride())}); "
                "its last dimension must be contiguous"
            )
    if not isinstance(layout, AttentionLayout):
        raise TypeError(f"{_WHERE}: layout must be an AttentionLayout, got {type(layout).__name__}")
    if layout.num_tokens != q.shape[2]:
        raise UsageError(f"{_WHERE}: layout was built for {layout.num_tokens} tokens but q has {q.shape[2]}")
    return checked_scale(_WHERE, scale, q.shape[-1])


def _kernel_ready(t: Tensor) -> Tensor:
    """``t`` as the kernels need it: contiguous last dim; on CUDA also 16-byte aligned rows."""
    if t.stride(-1) != 1:
        return t.contiguous()
    if t.device.type == "cuda" and (t.data_ptr() % 16 or any(s % 8 for s in t.stride()[:3])):
        return t.contiguous()
    return t


# The registered ops check their own inputs (they are public: torch.ops.aim.*): tensor metadata in
# the fake (trace-time) and real bodies, the layout's values too in the real one where that is
# cheap (aim.ops.block_map.require_block_map). Any strides are served (copied where the kernels
# need it).
def _check_forward(where: str, q, k, v, layout, scale, values: bool) -> None:
    check_native_qkv(where, q, k, v)
    checked_scale(where, scale, q.shape[-1])
    (require_block_map if values else check_block_map)(where, layout, q.shape[2], q.device)


def _check_backward(dout, q, k, v, out, lse, layout, scale, values: bool) -> None:
    _check_forward(_BWD, q, k, v, layout, scale, values)
    check_like(_BWD, q, out=out, dout=dout)
    check_lse(_BWD, q, lse)


@torch.library.custom_op("aim::block_sparse_attention_fwd", mutates_args=())
def _forward(
    q: Tensor, k: Tensor, v: Tensor,
    q_ptr: Tensor, q_idx: Tensor, q_partial: Tensor,
    k_ptr: Tensor, k_idx: Tensor, k_partial: Tensor, masks: Tensor,
    scale: float,
) -> tuple[Tensor, Tensor]:
    layout = (q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks)
    _check_forward(_FWD, q, k, v, layout, scale, values=True)
    kernel = kernel_code(q.device, backward=False)
    q, k, v = (_kernel_ready(t) for t in (q, k, v))
    batch, heads, tokens, head_dim = q.shape
    out = torch.empty((batch, heads, tokens, head_dim), dtype=q.dtype, device=q.device)
    lse = torch.empty((batch, heads, tokens), dtype=torch.float32, device=q.device)
    with device_guard(q.device):
        require_native(q.device).forward(
            DTYPE_CODES[q.dtype], (batch, heads, tokens, head_dim, scale),
            bhnd(q), bhnd(k), bhnd(v), bhnd(out), lse.data_ptr(),
            layout_args(tokens, layout), stream_handle(q.device), kernel=kernel,
        )
    return out, lse


@_forward.register_fake
def _forward_fake(q, k, v, q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks, scale):
    _check_forward(_FWD, q, k, v, (q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks), scale, values=False)
    batch, heads, tokens, head_dim = q.shape
    out = q.new_empty((batch, heads, tokens, head_dim))
    lse = q.new_empty((batch, heads, tokens), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("aim::block_sparse_attention_bwd", mutates_args=())
def _backward(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
    q_ptr: Tensor, q_idx: Tensor, q_partial: Tensor,
    k_ptr: Tensor, k_idx: Tensor, k_partial: Tensor, masks: Tensor,
    scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    layout = (q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks)
    _check_backward(dout, q, k, v, out, lse, layout, scale, values=True)
    kernel = kernel_code(q.device, backward=True)
    dout, q, k, v, out = (_kernel_ready(t) for t in (dout, q, k, v, out))
    lse = lse.contiguous()
    batch, heads, tokens, head_dim = q.shape
    dq, dk, dv = (torch.empty((batch, heads, tokens, head_dim), dtype=q.dtype, device=q.device) for _ in range(3))
    delta = torch.empty((batch, heads, tokens), dtype=torch.float32, device=q.device)
    # dq by fp32 atomics into dq_accum unless torch asks for deterministic algorithms.
    deterministic = torch.are_deterministic_algorithms_enabled()
    dq_accum = (
        torch.zeros((batch, heads, tokens, head_dim), dtype=torch.float32, device=q.device)
        if q.device.type == "cuda" and not deterministic
        else None
    )
    with device_guard(q.device):
        require_native(q.device).backward(
            DTYPE_CODES[q.dtype], (batch, heads, tokens, head_dim, scale),
            bhnd(q), bhnd(k), bhnd(v), bhnd(out), bhnd(dout), lse.data_ptr(),
            bhnd(dq), bhnd(dk), bhnd(dv), delta.data_ptr(),
            0 if dq_accum is None else dq_accum.data_ptr(),
            layout_args(tokens, layout), stream_handle(q.device), deterministic, kernel=kernel,
        )
    return dq, dk, dv


@_backward.register_fake
def _backward_fake(dout, q, k, v, out, lse, q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks, scale):
    _check_backward(dout, q, k, v, out, lse, (q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks), scale,
                    values=False)
    return tuple(q.new_empty(q.shape) for _ in range(3))


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, *layout, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, *layout)
    ctx.scale = scale
    ctx.mark_non_differentiable(lse)


def _autograd_backward(ctx, grad_out: Tensor, grad_lse: Tensor | None):
    q, k, v, out, lse, *layout = ctx.saved_tensors
    dq, dk, dv = torch.ops.aim.block_sparse_attention_bwd(grad_out, q, k, v, out, lse, *layout, ctx.scale)
    return (dq, dk, dv) + (None,) * (len(layout) + 1)


_forward.register_autograd(_autograd_backward, setup_context=_setup_context)
