"""Our block map in the forms other block-sparse kernels take (pure tensor code; runs on a CPU).

Two things describe an :class:`~aim.ops.layout.AttentionLayout` to FlashAttention-4 and to
FlexAttention:

* **block lists**: per query block, the key blocks that are full (no mask evaluated) and those
  that are partial, each list ascending; and for the backward the transposed lists (per key
  block, its query blocks). FlashAttention-4 masks the sequence end only on the last entry of
  each list, so ascending order is part of the contract, not a nicety.
* a **mask_mod** for the partial blocks, evaluated per (query, key) pair. It reads two small
  tables built from the layout (:class:`MaskTables`): the kind of every 128 x 128 block pair (-2
  empty, -1 full, p >= 0 the index of its stored bit mask) and the stored bit masks themselves.
  So it answers exactly what the layout says for every pair — for intent-causal clips, KV-cached
  passes (their leading query rows are empty), packed samples and layouts built from any mask —
  at the cost of two table reads per pair, like a token-group lookup.

FlashAttention-4's query block is ``128 * q_stage``: 128 on sm90 and 256 on sm100 (whose forward
runs two query tiles per CTA when the sequence is longer than one tile). A coarse query block is
full for a key block only if every 128-row part of it is; otherwise the mask_mod decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aim.ops.block_map import BLOCK, MASK_WORDS_PER_ROW
from aim.ops.layout import AttentionLayout

EMPTY, FULL = -2, -1  # block-table entries; >= 0 indexes a stored partial mask


@dataclass(frozen=True)
class BlockLists:
    """Block lists in FlashAttention-4's ``BlockSparseTensorsTorch`` form (int32, batch and head
    dims 1 so they broadcast): ``*_cnt`` (1, 1, rows), ``*_idx`` (1, 1, rows, width) with each
    row's first ``cnt`` entries ascending (the rest are padding the kernels never read)."""

    mask_block_cnt: torch.Tensor
    mask_block_idx: torch.Tensor
    full_block_cnt: torch.Tensor
    full_block_idx: torch.Tensor
    block_size: tuple[int, int]  # (query block, key block) in tokens

    def to(self, device: torch.device | str) -> "BlockLists":
        move = lambda t: t.to(device)  # noqa: E731
        return BlockLists(move(self.mask_block_cnt), move(self.mask_block_idx), move(self.full_block_cnt),
                          move(self.full_block_idx), self.block_size)


@dataclass(frozen=True)
class MaskTables:
    """The mask_mod's two lookups: ``blocks`` (num_blocks * num_blocks,) int32, the kind of block
    pair (qb, kb) at qb * num_blocks + kb (EMPTY, FULL or a partial-mask index p); ``bits``
    (max(P, 1) * BLOCK * MASK_WORDS_PER_ROW,) int32, bit c of word (p, row, w) = key column 32 w + c."""

    num_tokens: int
    num_blocks: int
    blocks: torch.Tensor
    bits: torch.Tensor

    def to(self, device: torch.device | str) -> "MaskTables":
        return MaskTables(self.num_tokens, self.num_blocks, self.blocks.to(device), self.bits.to(device))


def block_table(layout: AttentionLayout) -> torch.Tensor:
    """(num_blocks, num_blocks) int32: EMPTY, FULL or the partial-mask index of each block pair."""
    nb = layout.num_blocks
    table = torch.full((nb, nb), EMPTY, dtype=torch.int32)
    rows = torch.repeat_interleave(torch.arange(nb), torch.diff(layout.q_ptr.cpu().long()))
    table[rows, layout.q_idx.cpu().long()] = layout.q_partial.cpu()
    return table


def mask_tables(layout: AttentionLayout) -> MaskTables:
    """The tables :func:`layout_mask_mod` (and FlashAttention-4's CuTe twin of it) read."""
    masks = layout.masks.cpu()
    if masks.shape[0] == 0:  # no partial block: keep one all-zero mask so every read stays in bounds
        masks = torch.zeros(1, BLOCK, MASK_WORDS_PER_ROW, dtype=torch.int32)
    return MaskTables(layout.num_tokens, layout.num_blocks, block_table(layout).flatten().contiguous(),
                      masks.flatten().contiguous())


def layout_mask_mod(tables: MaskTables):
    """A FlexAttention-style ``mask_mod(b, h, q_idx, kv_idx)`` that reads the layout's tables.

    Positions past the sequence end are clamped onto it (the kernels mask them anyway)."""
    n, nb, blocks, bits = tables.num_tokens, tables.num_blocks, tables.blocks, tables.bits

    def mask_mod(b, h, q_idx, kv_idx):
        q, k = q_idx.clamp(max=n - 1), kv_idx.clamp(max=n - 1)
        kind = blocks[(q // BLOCK) * nb + k // BLOCK]
        word = bits[kind.clamp(min=0) * (BLOCK * MASK_WORDS_PER_ROW) + (q % BLOCK) * MASK_WORDS_PER_ROW + (k % BLOCK) // 32]
        return (kind == FULL) | ((kind >= 0) & (((word >> (k % 32)) & 1) == 1))

    return mask_mod


def flash_block_lists(layout: AttentionLayout, q_block: int = BLOCK) -> tuple[BlockLists, BlockLists]:
    """(forward lists, backward lists) for FlashAttention-4, query blocks of ``q_block`` tokens
    (a multiple of 128), key blocks of 128."""
    if q_block % BLOCK or q_block < BLOCK:
        raise ValueError(f"flash_block_lists: q_block must be a positive multiple of {BLOCK}, got {q_block}")
    factor, nb = q_block // BLOCK, layout.num_blocks
    table = block_table(layout)
    rows = -(-nb // factor)
    padded = torch.full((rows * factor, nb), EMPTY, dtype=torch.int32)
    padded[:nb] = table
    parts = padded.view(rows, factor, nb)
    full = (parts == FULL).all(1)
    partial = (parts != EMPTY).any(1) & ~full
    forward = BlockLists(*_lists(partial), *_lists(full), (q_block, BLOCK))
    backward = BlockLists(*_lists(partial.T), *_lists(full.T), (q_block, BLOCK))
    return forward, backward


def _lists(selected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a (rows, cols) bool matrix: (count, the selected columns ascending, padded)."""
    rows, cols = selected.shape
    counts = selected.sum(1).to(torch.int32)
    width = max(1, int(counts.max()) if rows else 1)
    column = torch.arange(cols)
    order = torch.sort(torch.where(selected, column, cols + column), dim=1).values[:, :width]
    order = torch.where(order < cols, order, 0) if cols else torch.zeros(rows, width, dtype=torch.long)
    return counts[None, None], order.to(torch.int32)[None, None]


def expand_block_lists(lists: BlockLists, tables: MaskTables, transposed: bool = False) -> torch.Tensor:
    """The dense (tokens, tokens) mask a kernel walking ``lists`` computes: full blocks all
    visible, partial blocks as :func:`layout_mask_mod` says, the rest hidden. ``transposed``: the
    lists run per key block (the backward's). For tests: it must equal the layout's mask."""
    n = tables.num_tokens
    q_size, k_size = lists.block_size
    mask_mod = layout_mask_mod(tables)
    dense = torch.zeros(n, n, dtype=torch.bool)
    for cnt, idx, full in ((lists.mask_block_cnt, lists.mask_block_idx, False),
                           (lists.full_block_cnt, lists.full_block_idx, True)):
        for outer in range(cnt.shape[-1]):
            for inner in idx[0, 0, outer, : int(cnt[0, 0, outer])].tolist():
                qb, kb = (inner, outer) if transposed else (outer, inner)
                q = torch.arange(qb * q_size, min((qb + 1) * q_size, n))
                k = torch.arange(kb * k_size, min((kb + 1) * k_size, n))
                if full:
                    dense[q[:, None], k[None, :]] = True
                else:
                    dense[q[:, None], k[None, :]] = mask_mod(0, 0, q[:, None], k[None, :])
    return dense
