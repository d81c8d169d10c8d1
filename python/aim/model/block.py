"""The mixture-of-transformers block (docs/method.md §3).

Every branch (video, action, and value when it has its own weights) keeps its own norms, AdaLN
modulation table, Q/K/V/O projections and FFN; the branches meet only in ONE self-attention over
the whole sequence, whose masking (intent-causal layout or KV-cached dense mask) is supplied by
the caller as ``attend``. Text cross-attention exists only in branches built with ``text=True``
(video and value). A branch's layer is exactly a Wan transformer block when its self-attention
sees only its own tokens, which is what lets Wan2.2 weights drive the video branch unchanged.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from aim.model.rope import apply_rotary
from aim.ops.dense_attention import dense_attention

Tensor = torch.Tensor
# attend(q, k, v) with q, k, v (B, N, heads, head_dim) of the current tokens -> (B, N, heads, head_dim)
Attend = Callable[[Tensor, Tensor, Tensor], Tensor]


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (as Wan does for its AdaLN norms)."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)


class AttentionProjections(nn.Module):
    """Q/K/V/O projections with RMS norms on Q and K across heads (Wan's QK norm)."""

    def __init__(self, dim: int, kv_dim: int, attn_dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.to_q = nn.Linear(dim, attn_dim)
        self.to_k = nn.Linear(kv_dim, attn_dim)
        self.to_v = nn.Linear(kv_dim, attn_dim)
        self.to_out = nn.Linear(attn_dim, dim)
        self.norm_q = nn.RMSNorm(attn_dim, eps=eps)
        self.norm_k = nn.RMSNorm(attn_dim, eps=eps)

    def qkv(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, N, dim), context (B, L, kv_dim) -> q (B, N, heads, hd), k, v (B, L, heads, hd)."""
        q = self.norm_q(self.to_q(x)).unflatten(-1, (self.num_heads, -1))
        k = self.norm_k(self.to_k(context)).unflatten(-1, (self.num_heads, -1))
        v = self.to_v(context).unflatten(-1, (self.num_heads, -1))
        return q, k, v

    def cross_attention(self, x: Tensor, context: Tensor) -> Tensor:
        """Unmasked attention of x to ``context`` (the text tokens), by the backend aim.ops picks."""
        q, k, v = self.qkv(x, context)
        out = dense_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.to_out(out.transpose(1, 2).flatten(2).type_as(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc_in = nn.Linear(dim, hidden_dim)
        self.fc_out = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_out(F.gelu(self.fc_in(x), approximate="tanh"))


class BranchLayer(nn.Module):
    """One branch's weights in one block: AdaLN -> (shared) self-attention -> text cross-attention
    -> AdaLN -> FFN, each residual gated as in Wan."""

    def __init__(self, dim: int, attn_dim: int, num_heads: int, ffn_dim: int, text: bool, cross_attn_norm: bool,
                 eps: float):
        super().__init__()
        self.norm1 = LayerNorm32(dim, eps, elementwise_affine=False)
        self.self_attn = AttentionProjections(dim, dim, attn_dim, num_heads, eps)
        self.cross_attn = AttentionProjections(dim, dim, attn_dim, num_heads, eps) if text else None
        self.norm2 = LayerNorm32(dim, eps, elementwise_affine=True) if text and cross_attn_norm else nn.Identity()
        self.norm3 = LayerNorm32(dim, eps, elementwise_affine=False)
        self.ffn = FeedForward(dim, ffn_dim)
        self.scale_shift_table = nn.Parameter(torch.empty(1, 6, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Wan's initialisation of the AdaLN table (children reset themselves)."""
        nn.init.normal_(self.scale_shift_table, std=self.scale_shift_table.shape[-1] ** -0.5)

    def modulation(self, per_token: Tensor) -> tuple[Tensor, ...]:
        """per_token (B, N, 6, D) -> shift, scale, gate (attention), shift, scale, gate (FFN), each (B, N, D)."""
        return tuple((self.scale_shift_table[None] + per_token.float()).unbind(2))

    def attention_inputs(self, x: Tensor, mod: tuple[Tensor, ...], rope: Tensor):
        """q, k, v (B, N, heads, hd) of this branch's tokens, RoPE applied to q and k."""
        shift, scale = mod[0], mod[1]
        h = (self.norm1(x) * (1 + scale) + shift).type_as(x)
        q, k, v = self.self_attn.qkv(h, h)
        return apply_rotary(q, rope), apply_rotary(k, rope), v

    def finish(self, x: Tensor, attn_out: Tensor, mod: tuple[Tensor, ...], text: Tensor | None) -> Tensor:
        """Residual updates after the shared attention: gated attention output, cross-attention, FFN."""
        gate, ffn_shift, ffn_scale, ffn_gate = mod[2], mod[3], mod[4], mod[5]
        x = (x.float() + self.self_attn.to_out(attn_out.flatten(2).type_as(x)) * gate).type_as(x)
        if self.cross_attn is not None:
            x = x + self.cross_attn.cross_attention(self.norm2(x).type_as(x), text)
        h = (self.norm3(x) * (1 + ffn_scale) + ffn_shift).type_as(x)
        return (x.float() + self.ffn(h).float() * ffn_gate).type_as(x)


class MoTBlock(nn.Module):
    """All branches of one layer; ``forward`` runs them around one shared self-attention."""

    def __init__(self, branches: dict[str, BranchLayer]):
        super().__init__()
        self.branches = nn.ModuleDict(branches)

    def forward(
        self,
        hidden: dict[str, Tensor],
        modulation: dict[str, Tensor],
        rope: dict[str, Tensor],
        text: Tensor | None,
        attend: Attend,
    ) -> dict[str, Tensor]:
        """hidden[b] (B, N_b, D_b) per branch b; ``attend`` takes the branches' tokens concatenated
        in ``hidden``'s order."""
        names = list(hidden)
        mods = {b: self.branches[b].modulation(modulation[b]) for b in names}
        qkv = [self.branches[b].attention_inputs(hidden[b], mods[b], rope[b]) for b in names]
        q, k, v = (torch.cat([t[i] for t in qkv], dim=1) for i in range(3))
        out = attend(q, k, v)
        pieces = out.split([hidden[b].shape[1] for b in names], dim=1)
        return {b: self.branches[b].finish(hidden[b], piece, mods[b], text) for b, piece in zip(names, pieces)}
