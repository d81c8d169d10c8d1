"""The ``sdpa`` backend: PyTorch's ``scaled_dot_product_attention`` with the layout's dense mask.

It runs every input (the resolver's last resort) and is what a user would write without ``aim``,
so benchmarks run it beside the native kernels. SDPA gives NaN for a query that sees no key; the
op's contract is a zero row, so such rows are computed over all keys and zeroed afterwards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aim.ops.layout import AttentionLayout

Tensor = torch.Tensor


def masked_sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float | None = None) -> Tensor:
    """SDPA with a dense (tokens, tokens) boolean mask; rows with no visible key give 0."""
    has_key = mask.any(-1)
    safe_mask = mask | ~has_key[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe_mask, scale=scale)
    return out * has_key[:, None].to(out.dtype)


def sdpa_sparse_attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float) -> Tensor:
    """softmax(scale q k^T masked by ``layout``) v with SDPA; q, k, v (B, heads, N, D)."""
    return masked_sdpa(q, k, v, layout.dense_mask(q.device), scale)
