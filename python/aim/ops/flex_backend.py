"""The ``flex`` backend: FlexAttention, compiled once per process, with a BlockMask that has
exactly the layout's full and partial blocks and decides partial blocks with the layout's own
bit masks (:func:`aim.ops.block_tables.layout_mask_mod`: no dense mask is built).

On the CPU FlexAttention runs forward only: it refuses inputs that require grad even under
``no_grad``, so inputs are detached there when no gradient is being recorded.
"""

from __future__ import annotations

from functools import cache

import torch

from aim.ops.block_map import BLOCK
from aim.ops.block_tables import layout_mask_mod, mask_tables
from aim.ops.layout import AttentionLayout

Tensor = torch.Tensor


@cache
def compiled_flex_attention(device_type: str):
    """``torch.compile(flex_attention)``, one per device type. On CUDA a change of shape (a growing
    KV cache) recompiles once with dynamic sizes; on the CPU sizes stay static, since Inductor's
    CPU FlexAttention with dynamic sizes (torch 2.13) emits C++ that does not compile."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False if device_type == "cpu" else None)


def layout_block_mask(layout: AttentionLayout, device: torch.device):
    """The layout's FlexAttention BlockMask on ``device`` (built once per layout and device)."""
    build = lambda: flex_block_mask(layout, device, layout_mask_mod(mask_tables(layout).to(device)))  # noqa: E731
    return layout.cached(("flex", str(device)), build)


def flex_block_mask(layout: AttentionLayout, device: torch.device | str, mask_mod=None):
    """A FlexAttention ``BlockMask`` with exactly the layout's full and partial blocks.

    ``mask_mod`` decides partial blocks per token; the default reads the layout's dense mask.
    """
    from torch.nn.attention.flex_attention import BlockMask

    nb, n = layout.num_blocks, layout.num_tokens
    kinds = layout.block_kinds().to(device)
    partial, full = kinds == 1, kinds == 2

    def lists(selected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts = selected.sum(-1).to(torch.int32)
        # Selected key blocks first (ascending), the rest after: Flex reads only the first counts.
        order = torch.argsort((~selected).to(torch.int8) * nb + torch.arange(nb, device=device), dim=-1)
        return counts[None, None], order.to(torch.int32)[None, None]

    if mask_mod is None:
        dense = layout.dense_mask(device)

        def mask_mod(b, h, q_idx, kv_idx):
            return dense[q_idx.clamp(max=n - 1), kv_idx.clamp(max=n - 1)] & (q_idx < n) & (kv_idx < n)

    kv_num, kv_idx = lists(partial)
    full_num, full_idx = lists(full)
    return BlockMask.from_kv_blocks(
        kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=BLOCK, mask_mod=mask_mod, seq_lengths=(n, n)
    )


def flex_sparse_attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float) -> Tensor:
    """softmax(scale q k^T masked by ``layout``) v with compiled FlexAttention; q, k, v (B, heads, N, D)."""
    if q.device.type == "cpu" and not torch.is_grad_enabled():
        q, k, v = q.detach(), k.detach(), v.detach()
    return compiled_flex_attention(q.device.type)(q, k, v, block_mask=layout_block_mask(layout, q.device), scale=scale)
