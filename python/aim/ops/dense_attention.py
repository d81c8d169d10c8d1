"""``aim.ops.dense_attention``: unmasked attention (the text cross-attention) through the backend
resolver: FlashAttention (4, else 2.x), xformers or SDPA, whichever :mod:`aim.ops.backend` picks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aim.ops.backend import AttentionBackend, resolve_dense_backend
from aim.ops.flash_backend import flash_dense_attention
from aim.ops.softmax_scale import checked_scale
from aim.ops.xformers_backend import xformers_dense_attention

Tensor = torch.Tensor


def dense_attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None = None) -> Tensor:
    """softmax(scale q k^T) v for q (B, heads, Nq, head_dim) and k, v (B, heads, Nk, head_dim);
    ``scale`` (finite, > 0) defaults to 1/sqrt(head_dim)."""
    if scale is not None:
        scale = checked_scale("aim.ops.dense_attention", scale, q.shape[-1])
    requires_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    backend = resolve_dense_backend(q.device, q.dtype, q.shape[-1], requires_grad)
    if backend is AttentionBackend.FLASH:
        return flash_dense_attention(q, k, v, scale)
    if backend is AttentionBackend.XFORMERS:
        return xformers_dense_attention(q, k, v, scale)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)
