"""The ``flash`` backend: FlashAttention-4 (``flash_attn.cute``) on our block lists, and the dense
FlashAttention kernels (FlashAttention-4, else the classic ``flash-attn`` 2.x) for cross-attention.

FlashAttention-4 takes (batch, tokens, heads, head_dim) tensors: the (B, heads, N, head_dim)
inputs are passed transposed, which for the model's (B, N, heads, head_dim) projections is the
memory they already have. The block lists and mask tables are built once per layout and device
(:mod:`aim.ops.block_tables`); its kernels compile at first use (CuTe DSL) and are cached by
FlashAttention-4 for every later layout of the same dtype and head_dim.
"""

from __future__ import annotations

import torch

from aim.ops.block_tables import flash_block_lists, mask_tables
from aim.ops.block_map import BLOCK
from aim.ops.layout import AttentionLayout

Tensor = torch.Tensor


def flash_query_block(device: torch.device, num_tokens: int) -> int:
    """FlashAttention-4's query block: 128 x q_stage (sm100 runs 2 query tiles per CTA once the
    sequence is longer than one tile)."""
    major, _ = torch.cuda.get_device_capability(device)
    return 2 * BLOCK if major == 10 and num_tokens > BLOCK else BLOCK


def flash_sparse_attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float) -> Tensor:
    """softmax(scale q k^T masked by ``layout``) v with FlashAttention-4; q, k, v (B, heads, N, D)."""
    from flash_attn.cute import flash_attn_func

    from aim.ops.flash_mask_mod import layout_mask_mod

    q_block = flash_query_block(q.device, layout.num_tokens)
    forward, backward, aux = layout.cached(("flash", q.device, q_block), lambda: _prepare(layout, q.device, q_block))
    out, _ = flash_attn_func(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), softmax_scale=scale,
        mask_mod=layout_mask_mod, aux_tensors=aux,
        block_sparse_tensors=forward, block_sparse_tensors_bwd=backward,
    )
    return out.transpose(1, 2)


def _prepare(layout: AttentionLayout, device: torch.device, q_block: int):
    from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch

    def torch_form(lists):
        lists = lists.to(device)
        return BlockSparseTensorsTorch(
            mask_block_cnt=lists.mask_block_cnt, mask_block_idx=lists.mask_block_idx,
            full_block_cnt=lists.full_block_cnt, full_block_idx=lists.full_block_idx, block_size=lists.block_size,
        )

    forward, backward = flash_block_lists(layout, q_block)
    tables = mask_tables(layout).to(device)
    return torch_form(forward), torch_form(backward), [tables.blocks, tables.bits]


def flash_dense_attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> Tensor:
    """Unmasked attention, q (B, heads, Nq, D), k and v (B, heads, Nk, D): FlashAttention-4 where
    it runs (sm90, sm100), else flash-attn 2.x."""
    from aim.ops.backend import AttentionInput, detect_platform, flash4_dense_problem

    args = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    if flash4_dense_problem(AttentionInput(q.device.type, q.dtype, q.shape[-1]), detect_platform(q.device)) is None:
        from flash_attn.cute import flash_attn_func

        out, _ = flash_attn_func(*args, softmax_scale=scale)
    else:
        from flash_attn import flash_attn_func

        out = flash_attn_func(*args, softmax_scale=scale)
    return out.transpose(1, 2)
