"""Keys and values of already-computed tokens, per layer, for chunk-wise rollout (docs/method.md §7).

Clean history (O, A) never attends to noisy tokens, so its keys and values do not change while a
chunk is denoised: they are computed once, appended here, and reused by every denoising step.
The cache also lists its tokens' groups (kind, chunk, length), from which a cached pass's layout
is compiled: queries are the new tokens, keys are the cached tokens followed by the new ones.
"""

from __future__ import annotations

import torch

from aim.ops import AttentionLayout, TokenGroup

Tensor = torch.Tensor


class KVCache:
    def __init__(self, num_layers: int):
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers
        self.groups: list[TokenGroup] = []

    def __len__(self) -> int:
        return sum(g.length for g in self.groups)

    def token_kinds(self) -> Tensor:
        """(len(self),) the TokenKind of every cached token, in cache order."""
        return torch.cat([torch.full((g.length,), int(g.kind)) for g in self.groups]) if self.groups else torch.zeros(0, dtype=torch.long)

    def batch(self, index: slice) -> "KVCache":
        """A cache viewing samples ``index`` of this one (e.g. the conditional half under CFG)."""
        view = KVCache(len(self.keys))
        view.keys = [None if k is None else k[index] for k in self.keys]
        view.values = [None if v is None else v[index] for v in self.values]
        view.groups = list(self.groups)
        return view


class CachedAttention:
    """The ``attend`` of one forward pass whose queries are new tokens and whose keys are the
    cache followed by those tokens; with ``commit`` the new keys and values are appended after
    the pass.

    ``layout`` covers all (cached + new) tokens with the cached tokens' query rows empty, so the
    square block-sparse op computes exactly the new rows: queries are zero-padded in front (the
    kernels skip the empty rows; the padding costs one (B, heads, cached, head_dim) buffer).
    """

    def __init__(self, cache: KVCache, groups: list[TokenGroup], commit: bool, layout: AttentionLayout, attention_fn):
        self.cache, self.groups, self.commit = cache, groups, commit
        self.layout, self.attention_fn = layout, attention_fn
        self.pending: list[tuple[int, Tensor, Tensor]] = []

    def layer(self, index: int):
        def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            """q, k, v (B, N_new, heads, head_dim) -> (B, N_new, heads, head_dim)."""
            if self.commit:
                self.pending.append((index, k, v))
            new = q.shape[1]
            cached_k, cached_v = self.cache.keys[index], self.cache.values[index]
            if cached_k is not None:
                k, v = torch.cat([cached_k, k], dim=1), torch.cat([cached_v, v], dim=1)
                q = torch.cat([q.new_zeros(q.shape[0], cached_k.shape[1], *q.shape[2:]), q], dim=1)
            layout = self.layout.to(q.device)
            out = self.attention_fn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout)
            return out.transpose(1, 2)[:, -new:]

        return attend

    def finish(self) -> None:
        """Appends the committed tokens' keys and values to the cache."""
        if not self.commit:
            return
        for index, k, v in self.pending:
            old_k, old_v = self.cache.keys[index], self.cache.values[index]
            self.cache.keys[index] = k if old_k is None else torch.cat([old_k, k], dim=1)
            self.cache.values[index] = v if old_v is None else torch.cat([old_v, v], dim=1)
        self.cache.groups = self.cache.groups + self.groups
        self.pending = []
