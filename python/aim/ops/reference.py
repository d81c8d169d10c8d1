"""Plain PyTorch twins of the attention op: the yardsticks tests and benchmarks measure against
(nothing in the package runs them; the backends live in their own modules).

* :func:`attention_reference` — float64, dense mask, obviously correct (slow).
* :func:`group_mask_mod` — a FlexAttention ``mask_mod`` computed from the token groups, for
  comparing against FlexAttention at its best.
"""

from __future__ import annotations

import torch

from aim.ops.softmax_scale import default_scale
from aim.ops.token_groups import GroupRule, TokenSequence


def attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, lse) in float64; rows with no visible key give out = 0 and lse = -inf."""
    scale = default_scale(q.shape[-1]) if scale is None else scale
    q64, k64, v64 = q.double(), k.double(), v.double()
    scores = (q64 @ k64.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~mask.to(q.device), float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    has_key = torch.isfinite(lse)
    probs = torch.exp(scores - torch.where(has_key, lse, torch.zeros_like(lse))[..., None])
    out = probs @ v64
    return out, lse


def group_mask_mod(tokens: TokenSequence, rule: GroupRule, device: torch.device | str):
    """A FlexAttention ``mask_mod`` that computes a group rule from two small lookups (the token's
    group, then the group-pair table) instead of reading a dense mask: Flex at its best."""
    groups = rule(tokens.group_meta, tokens.group_meta).to(device)
    group_of = tokens.group_of_token.to(device)
    n = len(tokens)

    def mask_mod(b, h, q_idx, kv_idx):
        inside = (q_idx < n) & (kv_idx < n)
        return groups[group_of[q_idx.clamp(max=n - 1)], group_of[kv_idx.clamp(max=n - 1)]] & inside

    return mask_mod
