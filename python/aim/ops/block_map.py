"""The block map the native attention kernels walk, and the checks that a set of tensors is one.

The format (``csrc/include/aim/attention_layout.h`` is the C++ side; :data:`BLOCK` must equal its
``kLayoutBlock``): N tokens in ``ceil(N / BLOCK)`` blocks, seven int32 tensors ``q_ptr``,
``q_idx``, ``q_partial`` (for each query block its key blocks, ascending, and each one's
partial-mask index, -1 for a full block), ``k_ptr``, ``k_idx``, ``k_partial`` (the same pairs by
key block) and ``masks`` (num_partial, BLOCK, BLOCK / 32) bit masks. A key block at a ragged end
is always partial, with no bit set past the last token.

The registered ops take these tensors from any caller, so they are checked before a kernel reads
them: :func:`check_block_map` (shapes, dtypes, devices, contiguity, counts: tensor metadata only,
no device synchronisation) on every call, and :func:`check_block_map_values` (pointers, index
ranges, both lists holding the same pairs, the ragged end) where reading the values is cheap: on
the CPU. A set of tensors that passed, or that :class:`~aim.ops.layout.AttentionLayout` built or
copied from a checked set, is remembered (:func:`remember_valid`) until one of them is changed in
place or freed, so the values are read once per layout, not once per call, and CUDA copies of a
checked layout are known good without reading them back. CUDA tensors nobody checked get the
metadata checks only.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import torch

from aim.errors import UsageError

BLOCK = 128  # tokens per block; must equal aim::kLayoutBlock
MASK_WORDS_PER_ROW = BLOCK // 32  # 32-bit words per row of a partial block's mask (aim::kMaskWordsPerRow)
NAMES = ("q_ptr", "q_idx", "q_partial", "k_ptr", "k_idx", "k_partial", "masks")


def num_blocks_for(num_tokens: int) -> int:
    return -(-num_tokens // BLOCK)


def check_block_map(where: str, tensors: Sequence[torch.Tensor], num_tokens: int, device: torch.device) -> None:
    """Shapes, dtypes, device and contiguity of the seven tensors for ``num_tokens`` tokens on ``device``."""
    if len(tensors) != len(NAMES):
        raise UsageError(f"{where}: the layout is {len(NAMES)} tensors ({', '.join(NAMES)}), got {len(tensors)}")
    named = dict(zip(NAMES, tensors))
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: layout tensor {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != torch.int32:
            raise UsageError(f"{where}: layout tensor {name} must be int32, got {t.dtype}")
        if t.device != device:
            raise UsageError(f"{where}: layout tensor {name} is on {t.device}, the inputs on {device} "
                             "(use layout.to(device))")
        if t.dim() != (3 if name == "masks" else 1):
            raise UsageError(f"{where}: layout tensor {name} must be {'3-D' if name == 'masks' else '1-D'}, "
                             f"got shape {tuple(t.shape)}")
        if not t.is_contiguous():
            raise UsageError(f"{where}: layout tensor {name} must be contiguous (strides {tuple(t.stride())})")
    blocks = num_blocks_for(num_tokens)
    for name in ("q_ptr", "k_ptr"):
        if named[name].shape[0] != blocks + 1:
            raise UsageError(f"{where}: layout tensor {name} has {named[name].shape[0]} entries; {num_tokens} tokens "
                             f"make {blocks} blocks of {BLOCK}, so it needs {blocks + 1} (a layout built for other "
                             "tokens?)")
    pairs = named["q_idx"].shape[0]
    for name in ("q_partial", "k_idx", "k_partial"):
        if named[name].shape[0] != pairs:
            raise UsageError(f"{where}: layout tensor {name} has {named[name].shape[0]} entries, q_idx {pairs}: "
                             "both lists must hold the same block pairs")
    if pairs > blocks * blocks:
        raise UsageError(f"{where}: the layout lists {pairs} block pairs, more than the {blocks} x {blocks} there are")
    if tuple(named["masks"].shape[1:]) != (BLOCK, MASK_WORDS_PER_ROW):
        raise UsageError(f"{where}: layout tensor masks must be (num_partial, {BLOCK}, {MASK_WORDS_PER_ROW}), "
                         f"got {tuple(named['masks'].shape)}")


def check_block_map_values(where: str, tensors: Sequence[torch.Tensor], num_tokens: int) -> None:
    """What the values must satisfy for the kernels to read only what exists and compute the mask
    the lists describe; ``tensors`` passed :func:`check_block_map`. Reads them on the host."""
    q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks = (t.detach().cpu().numpy() for t in tensors)
    blocks, pairs, num_partial = num_blocks_for(num_tokens), q_idx.shape[0], masks.shape[0]

    def fail(problem: str) -> None:
        raise UsageError(f"{where}: invalid layout: {problem} (build layouts with aim.ops.AttentionLayout)")

    for name, ptr in (("q_ptr", q_ptr), ("k_ptr", k_ptr)):
        if ptr[0] != 0 or ptr[-1] != pairs or (np.diff(ptr) < 0).any():
            fail(f"{name} must rise from 0 to the {pairs} listed pairs, got {ptr[0]} .. {ptr[-1]}")
    for name, idx in (("q_idx", q_idx), ("k_idx", k_idx)):
        if pairs and (idx.min() < 0 or idx.max() >= blocks):
            fail(f"{name} holds block {idx.min() if idx.min() < 0 else idx.max()}, outside 0..{blocks - 1}")
    for name, partial in (("q_partial", q_partial), ("k_partial", k_partial)):
        if pairs and (partial.min() < -1 or partial.max() >= num_partial):
            fail(f"{name} holds mask index {partial.min() if partial.min() < -1 else partial.max()}, outside "
                 f"-1..{num_partial - 1}")
    q_row = np.repeat(np.arange(blocks), np.diff(q_ptr))
    k_row = np.repeat(np.arange(blocks), np.diff(k_ptr))
    by_query = q_row.astype(np.int64) * blocks + q_idx
    by_key = k_idx.astype(np.int64) * blocks + k_row
    if (np.diff(by_query) <= 0).any() or (np.diff(k_row.astype(np.int64) * blocks + k_idx) <= 0).any():
        fail("each block's list must be strictly ascending")
    order = np.argsort(by_key, kind="stable")
    if not (np.array_equal(by_query, by_key[order]) and np.array_equal(q_partial, k_partial[order])):
        fail("the by-query and by-key lists do not hold the same block pairs and masks")
    ragged = num_tokens % BLOCK
    if ragged:
        at_end = q_partial[q_idx == blocks - 1]
        if (at_end < 0).any():
            fail(f"a block at the ragged end (tokens {num_tokens - ragged}..{num_tokens - 1}) is marked full")
        if unpack_bits(masks[at_end])[..., ragged:].any():
            fail(f"a mask lets a query see keys past the last token ({num_tokens - 1})")


def pack_bits(blocks: torch.Tensor) -> np.ndarray:
    """(P, BLOCK, BLOCK) bool -> (P, BLOCK, BLOCK/32) int32, bit c of word w = column 32*w + c."""
    packed = np.packbits(blocks.numpy(), axis=-1, bitorder="little")  # (P, BLOCK, BLOCK/8) uint8
    return packed.view("<u4").astype(np.uint32).view(np.int32)


def unpack_bits(masks: np.ndarray) -> np.ndarray:
    """(P, BLOCK, BLOCK/32) int32 -> (P, BLOCK, BLOCK) bool, the inverse of :func:`pack_bits`."""
    as_bytes = np.ascontiguousarray(masks).view(np.uint32).astype("<u4").view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little").astype(bool)


# ------------------------------------------------------------------------------------ known good
# ids of a checked set (with its token count) -> each tensor's (version, data_ptr) when checked.
_valid: dict[tuple[int, ...], tuple[tuple[int, int], ...]] = {}


def _key(tensors: Sequence[torch.Tensor], num_tokens: int) -> tuple[int, ...]:
    return (num_tokens, *(id(t) for t in tensors))


def _stamp(tensors: Sequence[torch.Tensor]) -> tuple[tuple[int, int], ...]:
    return tuple((_version(t), t.data_ptr()) for t in tensors)


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter (and cannot change outside inference mode)
        return -1


def remember_valid(tensors: Sequence[torch.Tensor], num_tokens: int) -> None:
    """Record ``tensors`` as a valid block map of ``num_tokens`` tokens, as they are now."""
    key = _key(tensors, num_tokens)
    if key not in _valid:
        for t in tensors:
            weakref.finalize(t, _valid.pop, key, None)
    _valid[key] = _stamp(tensors)


def known_valid(tensors: Sequence[torch.Tensor], num_tokens: int) -> bool:
    """Whether ``tensors`` were recorded valid for ``num_tokens`` and none changed since."""
    stamp = _valid.get(_key(tensors, num_tokens))
    return stamp is not None and stamp == _stamp(tensors)


def require_block_map(where: str, tensors: Sequence[torch.Tensor], num_tokens: int, device: torch.device) -> None:
    """The check the ops run on every call: nothing for a known-valid set (device aside); else the
    metadata, and on the CPU the values too (then the set is remembered)."""
    if len(tensors) == len(NAMES) and known_valid(tensors, num_tokens):
        if tensors[0].device != device:
            raise UsageError(f"{where}: the layout is on {tensors[0].device}, the inputs on {device} "
                             "(use layout.to(device))")
        return
    check_block_map(where, tensors, num_tokens, device)
    if device.type == "cpu":
        check_block_map_values(where, tensors, num_tokens)
        remember_valid(tensors, num_tokens)
