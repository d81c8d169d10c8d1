"""The ``xformers`` backend: ``xformers.ops.memory_efficient_attention`` with an attention bias.

Where the layout is plain packing — samples side by side, each fully bidirectional or token-causal
within itself (the ``full`` and ``causal`` rules) — the bias is xformers' block-diagonal mask over
all samples of the batch, which its kernels skip block by block. Any other layout (the
intent-causal clips, KV-cached passes) becomes a tensor bias: 0 where a query sees a key, -inf
elsewhere, one (tokens, tokens) matrix expanded over batch and heads (no copy). xformers then
computes every block, like SDPA with the dense mask. Rows that see no key are computed over all
keys and set to zero afterwards (the op's contract), since a row of -inf has no softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aim.ops.layout import AttentionLayout

Tensor = torch.Tensor
_ALIGN = 16  # elements: xformers wants the bias rows 16-byte aligned (8 halves, 4 floats); 16 covers both


@dataclass(frozen=True)
class PackedSegments:
    """Samples of ``lengths`` tokens side by side, each seeing itself wholly or ``causal``ly."""

    lengths: tuple[int, ...]
    causal: bool

    def to_dense(self) -> Tensor:
        sample = torch.repeat_interleave(torch.arange(len(self.lengths)), torch.tensor(self.lengths))
        visible = sample[:, None] == sample[None, :]
        if self.causal:
            index = torch.arange(sample.numel())
            visible &= index[None, :] <= index[:, None]
        return visible


@dataclass(frozen=True)
class TensorBias:
    """``bias`` (tokens, tokens): 0 where visible, -inf elsewhere, rows of ``has_key`` False all 0."""

    bias: Tensor
    has_key: Tensor


def packed_segments(mask: Tensor) -> PackedSegments | None:
    """The packing ``mask`` (tokens, tokens) is, or None when it is not plain packing."""
    n = mask.shape[0]
    index = torch.arange(n, device=mask.device)
    first_seen = torch.where(mask.any(1), mask.to(torch.int8).argmax(1), index)
    starts = first_seen == index
    if not bool(starts[0]):
        return None
    sample = torch.cumsum(starts, 0) - 1
    lengths = tuple(torch.bincount(sample).tolist())
    for causal in (False, True):
        candidate = PackedSegments(lengths, causal)
        if torch.equal(candidate.to_dense().to(mask.device), mask):
            return candidate
    return None


def tensor_bias(mask: Tensor, dtype: torch.dtype) -> TensorBias:
    """The additive bias for ``mask``, in storage whose rows are padded to 16 elements."""
    n = mask.shape[0]
    has_key = mask.any(1)
    storage = torch.zeros(n, -(-n // _ALIGN) * _ALIGN, dtype=dtype, device=mask.device)
    bias = storage[:, :n]
    bias.masked_fill_(~(mask | ~has_key[:, None]), float("-inf"))
    return TensorBias(bias, has_key)


def layout_bias(layout: AttentionLayout, device: torch.device, dtype: torch.dtype) -> PackedSegments | TensorBias:
    """What :func:`xformers_sparse_attention` passes for ``layout`` (built once per layout, device, dtype)."""

    def build():
        mask = layout.dense_mask(device)
        return packed_segments(mask) or tensor_bias(mask, dtype)

    return layout.cached(("xformers", str(device), dtype), build)


def xformers_sparse_attention(q: Tensor, k: Tensor, v: Tensor, layout: AttentionLayout, scale: float) -> Tensor:
    """softmax(scale q k^T masked by ``layout``) v with xformers; q, k, v (B, heads, N, D)."""
    from xformers.ops import fmha, memory_efficient_attention

    batch, heads, n, head_dim = q.shape
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, N, heads, D), xformers' layout
    bias = layout_bias(layout, q.device, q.dtype)
    if isinstance(bias, PackedSegments):
        kind = fmha.attn_bias.BlockDiagonalCausalMask if bias.causal else fmha.attn_bias.BlockDiagonalMask
        # The batch's samples become more segments of one long sequence.
        flat = [t.reshape(1, batch * n, heads, head_dim) for t in (q, k, v)]
        out = memory_efficient_attention(*flat, attn_bias=kind.from_seqlens(list(bias.lengths) * batch), scale=scale)
        out = out.view(batch, n, heads, head_dim)
    else:
        out = memory_efficient_attention(q, k, v, attn_bias=bias.bias.expand(batch, heads, n, n), scale=scale)
        out = out * bias.has_key[None, :, None, None].to(out.dtype)
    return out.transpose(1, 2)


def xformers_dense_attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> Tensor:
    """Unmasked attention with xformers; q (B, heads, Nq, D), k and v (B, heads, Nk, D)."""
    from xformers.ops import memory_efficient_attention

    out = memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale)
    return out.transpose(1, 2)
