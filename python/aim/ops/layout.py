"""The block map of an attention mask: which key blocks each query block visits, and how.

This is the form the native kernels walk (:mod:`aim.ops.block_map` states the format and checks
it; ``csrc/include/aim/attention_layout.h`` is the C++ side): the N tokens are cut into blocks of
:data:`BLOCK` tokens; for every pair of
query and key blocks the mask is *full* (every pair visible: no mask is evaluated), *partial*
(a 128 x 128 bit mask is stored) or *empty* (the pair is skipped). The same pairs are also listed
by key block (transposed) for the backward pass.

A layout is built from a dense boolean mask, from any vectorised token rule, or from a
:class:`~aim.ops.token_groups.TokenSequence` and a rule such as the intent-causal table. It is
built once per sequence structure and reused across steps; ``to(device)`` copies, the dense mask
and whatever a backend derives from the layout (:meth:`AttentionLayout.cached`) are kept with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Hashable, TypeVar

import numpy as np
import torch

from aim.errors import UsageError
from aim.ops.block_map import (
    BLOCK,
    MASK_WORDS_PER_ROW,
    check_block_map,
    check_block_map_values,
    known_valid,
    pack_bits,
    remember_valid,
    unpack_bits,
)
from aim.ops.token_groups import INTENT_CAUSAL, TokenRule, TokenSequence

T = TypeVar("T")

# Rows of the mask evaluated together while compiling (one query block at a time).
RowRule = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class AttentionLayout:
    """A compiled block map. Build with :meth:`from_mask`, :meth:`from_rule` or :meth:`from_tokens`.

    Tensors (int32): ``q_ptr``/``q_idx``/``q_partial`` list, for each query block, its key
    blocks (ascending) and each one's partial-mask index (-1 when fully visible);
    ``k_ptr``/``k_idx``/``k_partial`` the same pairs listed by key block; ``masks`` the bit masks
    of partial blocks, (num_partial, BLOCK, BLOCK // 32) int32 holding uint32 bit patterns.
    Built by the class methods, a layout is valid by construction; one made from tensors of your
    own is checked (:mod:`aim.ops.block_map`) when an op or :meth:`to` first uses it.
    """

    num_tokens: int
    q_ptr: torch.Tensor
    q_idx: torch.Tensor
    q_partial: torch.Tensor
    k_ptr: torch.Tensor
    k_idx: torch.Tensor
    k_partial: torch.Tensor
    masks: torch.Tensor
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> "AttentionLayout":
        """From a dense (tokens, tokens) boolean mask: mask[i, j] says query i sees key j."""
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise UsageError(f"AttentionLayout.from_mask: mask must be a square 2-D tensor, got {shape}")
        if mask.dtype != torch.bool:
            raise UsageError(f"AttentionLayout.from_mask: mask must be bool, got {mask.dtype}")
        dense = mask.detach().to("cpu")
        return cls._compile(lambda rows: dense[rows], dense.shape[0])

    @classmethod
    def from_rule(cls, rule: RowRule, num_tokens: int) -> "AttentionLayout":
        """From ``rule(query_indices) -> bool (len(query_indices), num_tokens)``."""
        return cls._compile(rule, num_tokens)

    @classmethod
    def from_tokens(cls, tokens: TokenSequence, rule: TokenRule = INTENT_CAUSAL, first_query: int = 0) -> "AttentionLayout":
        """From a token sequence and a token rule (default: the intent-causal table, docs/method.md §5).

        With ``first_query`` > 0 only tokens from that index on are queries (the rows before it
        are empty, so the kernels skip them): the layout of a KV-cached pass, whose keys are the
        cached tokens followed by the new ones and whose queries are the new ones.
        """
        if not 0 <= first_query < len(tokens):
            raise UsageError(f"AttentionLayout.from_tokens: first_query {first_query} outside 0..{len(tokens) - 1}")
        if getattr(rule, "group_level", False):
            groups = rule(tokens.group_meta, tokens.group_meta)
            group_of = tokens.group_of_token
            visible = lambda rows: groups[group_of[rows]][:, group_of]  # noqa: E731
        else:
            meta = tokens.meta
            visible = lambda rows: rule(meta.rows(rows), meta)  # noqa: E731
        if first_query == 0:
            return cls._compile(visible, len(tokens))
        return cls._compile(lambda rows: visible(rows) & (rows >= first_query)[:, None], len(tokens))

    @classmethod
    def _compile(cls, rule: RowRule, num_tokens: int) -> "AttentionLayout":
        if num_tokens < 1:
            raise UsageError(f"AttentionLayout: num_tokens must be >= 1, got {num_tokens}")
        nb = math.ceil(num_tokens / BLOCK)
        padded = nb * BLOCK
        row_lists, partial_masks = [], []
        q_entries: list[tuple[np.ndarray, np.ndarray]] = []
        num_partial = 0
        for qb in range(nb):
            rows = torch.arange(qb * BLOCK, min((qb + 1) * BLOCK, num_tokens))
            visible = rule(rows)
            if visible.shape != (rows.numel(), num_tokens) or visible.dtype != torch.bool:
                raise UsageError(
                    f"AttentionLayout: rule returned {tuple(visible.shape)} {visible.dtype} for "
                    f"{rows.numel()} query rows; expected ({rows.numel()}, {num_tokens}) bool"
                )
            block_rows = torch.zeros(BLOCK, padded, dtype=torch.bool)
            block_rows[: rows.numel(), :num_tokens] = visible
            blocks = block_rows.view(BLOCK, nb, BLOCK).transpose(0, 1)  # (kb, row, col)
            any_visible = blocks.flatten(1).any(1)
            all_visible = blocks.flatten(1).all(1)
            kbs = torch.nonzero(any_visible).flatten()
            partial = ~all_visible[kbs]
            partial_index = torch.full((kbs.numel(),), -1, dtype=torch.int64)
            count = int(partial.sum())
            partial_index[partial] = torch.arange(num_partial, num_partial + count)
            num_partial += count
            if count:
                partial_masks.append(pack_bits(blocks[kbs[partial]]))
            q_entries.append((kbs.numpy().astype(np.int32), partial_index.numpy().astype(np.int32)))
            row_lists.append(kbs.numel())
        q_ptr = np.zeros(nb + 1, dtype=np.int64)
        q_ptr[1:] = np.cumsum(row_lists)
        q_idx = np.concatenate([e[0] for e in q_entries]) if q_entries else np.zeros(0, np.int32)
        q_partial = np.concatenate([e[1] for e in q_entries]) if q_entries else np.zeros(0, np.int32)
        q_row = np.repeat(np.arange(nb, dtype=np.int32), row_lists)
        order = np.lexsort((q_row, q_idx))  # by key block, then query block
        k_ptr = np.zeros(nb + 1, dtype=np.int64)
        k_ptr[1:] = np.cumsum(np.bincount(q_idx, minlength=nb))
        masks = (
            np.concatenate(partial_masks)
            if partial_masks
            else np.zeros((0, BLOCK, MASK_WORDS_PER_ROW), dtype=np.int32)
        )
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int32))  # noqa: E731
        layout = cls(
            num_tokens=num_tokens,
            q_ptr=as_tensor(q_ptr),
            q_idx=as_tensor(q_idx),
            q_partial=as_tensor(q_partial),
            k_ptr=as_tensor(k_ptr),
            k_idx=as_tensor(q_row[order]),
            k_partial=as_tensor(q_partial[order]),
            masks=torch.from_numpy(masks),
        )
        remember_valid(layout.tensors(), num_tokens)
        return layout

    # ------------------------------------------------------------------ properties
    @property
    def num_blocks(self) -> int:
        return self.q_ptr.numel() - 1

    @property
    def device(self) -> torch.device:
        return self.q_idx.device

    @property
    def num_visited_blocks(self) -> int:
        return self.q_idx.numel()

    @property
    def num_partial_blocks(self) -> int:
        return self.masks.shape[0]

    @property
    def block_density(self) -> float:
        """Fraction of the num_blocks**2 block pairs the kernels compute."""
        return self.num_visited_blocks / self.num_blocks**2

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The seven tensors the attention op takes, in its argument order."""
        return (self.q_ptr, self.q_idx, self.q_partial, self.k_ptr, self.k_idx, self.k_partial, self.masks)

    def to(self, device: torch.device | str) -> "AttentionLayout":
        """A copy on ``device`` (cached: repeated calls return the same object). The copy of a
        checked layout is known valid there, so the ops need not read a CUDA copy back."""
        device = torch.device(device)
        if device == self.device:
            return self
        return self.cached(str(device), lambda: self._moved(device))

    def _moved(self, device: torch.device) -> "AttentionLayout":
        tensors = self.tensors()
        if not known_valid(tensors, self.num_tokens):
            check_block_map("AttentionLayout.to", tensors, self.num_tokens, self.device)
            check_block_map_values("AttentionLayout.to", tensors, self.num_tokens)
        moved = AttentionLayout(self.num_tokens, *(t.to(device) for t in tensors))
        remember_valid(moved.tensors(), self.num_tokens)
        return moved

    def cached(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()`` the first time ``key`` is asked of this layout, the same object afterwards:
        what a backend derives from a layout (block lists, masks, biases) lives as long as it does."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def dense_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The (tokens, tokens) boolean mask on ``device`` (default: the layout's), built once per
        device (under torch.compile: while tracing, a constant of the graph); :meth:`to_dense`
        decodes it afresh."""
        return _dense_mask_on(self, str(self.device if device is None else torch.device(device)))

    def __repr__(self) -> str:
        return (
            f"AttentionLayout(tokens={self.num_tokens}, blocks={self.num_blocks}x{self.num_blocks}, "
            f"visited={self.num_visited_blocks} ({self.block_density:.1%}), partial={self.num_partial_blocks})"
        )

    # ------------------------------------------------------------------ decoding
    def to_dense(self) -> torch.Tensor:
        """The (tokens, tokens) boolean mask this layout encodes (on the layout's device)."""
        nb, n = self.num_blocks, self.num_tokens
        q_ptr = self.q_ptr.cpu().numpy()
        q_idx = self.q_idx.cpu().numpy()
        q_partial = self.q_partial.cpu().numpy()
        bits = unpack_bits(self.masks.cpu().numpy())
        dense = np.zeros((nb * BLOCK, nb * BLOCK), dtype=bool)
        for qb in range(nb):
            for e in range(q_ptr[qb], q_ptr[qb + 1]):
                kb, p = q_idx[e], q_partial[e]
                tile = dense[qb * BLOCK : (qb + 1) * BLOCK, kb * BLOCK : (kb + 1) * BLOCK]
                tile[...] = True if p < 0 else bits[p]
        return torch.from_numpy(dense[:n, :n].copy()).to(self.device)

    def block_kinds(self) -> torch.Tensor:
        """(num_blocks, num_blocks) int8: 0 empty, 1 partial, 2 full — for pictures and stats."""
        nb = self.num_blocks
        kinds = torch.zeros(nb, nb, dtype=torch.int8)
        rows = torch.repeat_interleave(torch.arange(nb), torch.diff(self.q_ptr.cpu().long()))
        cols = self.q_idx.cpu().long()
        kinds[rows, cols] = torch.where(self.q_partial.cpu() < 0, 2, 1).to(torch.int8)
        return kinds


@torch.compiler.assume_constant_result
def _dense_mask_on(layout: AttentionLayout, device: str) -> torch.Tensor:
    return layout.cached(("dense", device), lambda: layout.to_dense().to(device))
