"""The AIM transformer: three streams, two (or three) weight branches, one shared masked attention.

Read top to bottom: embeddings turn each group (docs/method.md §5's O, A, X, M, Ah) into tokens of its
branch; per-token timesteps give each stream's AdaLN modulation; the MoT blocks run the branches
around one self-attention over the whole sequence (intent-causal layout through
``aim.ops.attention``, or a KV cache during rollout); each noisy group is read out by its
stream's head as a flow velocity in the group's own data shape.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from aim.model.block import BranchLayer, MoTBlock
from aim.model.config import AIMConfig
from aim.model.embeddings import (
    ActionEmbedding,
    PatchEmbedding,
    TextProjection,
    TimeEmbedding,
)
from aim.model.groups import StreamGroup
from aim.model.heads import OutputHead, unpatchify
from aim.model.kv_cache import CachedAttention, KVCache
from aim.model.rope import RotaryEmbedding, grid_positions, time_positions
from aim.ops import (
    AttentionLayout,
    GroupRule,
    TokenGroup,
    TokenSequence,
    attention,
    rule_by_name,
)

Tensor = torch.Tensor
AttentionFn = Callable[[Tensor, Tensor, Tensor, AttentionLayout], Tensor]
_LAYOUT_CACHE_SIZE = 32
BRANCHES = ("video", "value", "action")  # the order in which blocks concatenate the branches' tokens


class AIMTransformer(nn.Module):
    def __init__(self, config: AIMConfig, rule: GroupRule | None = None, attention_fn: AttentionFn = attention):
        """``rule`` decides visibility between groups (default: ``config.attention_rule``, spec
        §5's table unless an ablation is configured); ``attention_fn(q, k, v, layout)`` runs the
        uncached shared attention (q, k, v of shape (B, heads, N, head_dim)): ``aim.ops.attention``
        unless a benchmark swaps in another."""
        super().__init__()
        self.config = config
        self.rule = rule_by_name(config.attention_rule) if rule is None else rule
        self.attention_fn = attention_fn
        c = config
        self.rope = RotaryEmbedding(c.head_dim, c.rope_theta)
        self.text_embedder = TextProjection(c.text_dim, c.dim)
        self.patch_embedding = PatchEmbedding(c.latent_channels, c.dim, c.patch_size)
        streams = ("video", "value", "action") if c.value_stream else ("video", "action")
        if c.value_stream:
            self.value_patch_embedding = PatchEmbedding(c.latent_channels, c.dim, c.patch_size)
            # The paper's learned value noise token: marks value tokens inside the shared video branch.
            self.value_token = nn.Parameter(torch.zeros(c.dim))
        self.action_embedding = ActionEmbedding(c.action_channels, c.action_dim)
        time_widths = {"video": c.dim, "value": c.dim, "action": c.action_dim}
        self.time_embeddings = nn.ModuleDict({s: TimeEmbedding(c.freq_dim, time_widths[s]) for s in streams})
        self.blocks = nn.ModuleList([MoTBlock(self._branch_layers()) for _ in range(c.num_layers)])
        video_out = c.latent_channels * c.patch_volume
        head_shapes = {"video": (c.dim, video_out), "value": (c.dim, video_out), "action": (c.action_dim, c.action_channels)}
        self.heads = nn.ModuleDict({s: OutputHead(*head_shapes[s], c.eps) for s in streams})
        self.gradient_checkpointing = False
        self._layouts: OrderedDict = OrderedDict()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Every parameter initialised as the constructor does; for a model built on the meta
        device and materialised with ``to_empty`` (big models skip the constructor's work)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.config.value_stream:
            self.value_token.zero_()

    def _branch_layers(self) -> dict[str, BranchLayer]:
        c = self.config
        video = lambda: BranchLayer(c.dim, c.dim, c.num_heads, c.ffn_dim, True, c.cross_attn_norm, c.eps)  # noqa: E731
        layers = {"video": video()}
        if c.value_own_weights:
            layers["value"] = video()
        layers["action"] = BranchLayer(c.action_dim, c.dim, c.num_heads, c.action_ffn_dim, False, False, c.eps)
        return layers

    def branch_of(self, stream: str) -> str:
        """The weight branch that runs a stream's tokens (value shares video's by default)."""
        if stream == "value" and not self.config.value_own_weights:
            return "video"
        return stream

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        groups: Sequence[StreamGroup],
        text: Tensor,
        cache: KVCache | None = None,
        commit: bool = False,
    ) -> list[Tensor | None]:
        """Flow velocities for every noisy group (None for clean groups), each shaped like the
        group's data. ``text`` (B, L, text_dim) conditions the video and value streams.

        Without ``cache`` the groups form the whole sequence and attention follows the rule's
        layout. With ``cache`` the groups are new tokens that also see the cached ones; ``commit``
        appends their keys and values to the cache.
        """
        self._check_inputs(groups, text)
        tokens, temb, modulation, positions, rows = self._embed(groups)
        rope = {b: self.rope(p.to(text.device)) for b, p in positions.items()}
        text_tokens = self.text_embedder(text)
        if cache is None:
            layout = self._layout(groups).to(text.device)
            attend_of = lambda i: _layout_attend(self.attention_fn, layout)  # noqa: E731
        else:
            new_groups = self._token_groups(groups)
            layout = self._cached_layout(cache.groups, new_groups)
            cached = CachedAttention(cache, new_groups, commit, layout, self.attention_fn)
            attend_of = cached.layer
        hidden = tokens
        for i, block in enumerate(self.blocks):
            args = (hidden, modulation, rope, text_tokens, attend_of(i))
            if self.gradient_checkpointing and torch.is_grad_enabled():
                hidden = checkpoint(block, *args, use_reentrant=False)
            else:
                hidden = block(*args)
        if cache is not None:
            cached.finish()
        return self._read_out(groups, hidden, temb, rows)

    def _embed(self, groups: Sequence[StreamGroup]):
        """Per branch: tokens (B, N_b, D_b), temb (B, N_b, D_b), modulation (B, N_b, 6, D_b),
        positions (N_b, 3); and each group's rows in the branch-concatenated sequence."""
        per_branch: dict[str, list] = {}
        placed = []
        for g in groups:
            branch = self.branch_of(g.stream)
            if g.is_video_like:
                embedding = self.value_patch_embedding if g.stream == "value" else self.patch_embedding
                x = embedding(g.data)
                if g.stream == "value":
                    x = x + self.value_token.to(x.dtype)
                frames, height, width = self._grid(g)
                t = g.timesteps[:, :: self.config.patch_size[0]].repeat_interleave(height * width, dim=1)
                pos = grid_positions(frames, height, width, g.start)
            else:
                x = self.action_embedding(g.data)
                t = g.timesteps
                pos = time_positions(g.data.shape[1], g.start, g.step)
            e, m = self.time_embeddings[g.stream](t)
            per_branch.setdefault(branch, []).append((x, e.to(x.dtype), m, pos))
            placed.append((branch, len(per_branch[branch]) - 1))
        names = [b for b in BRANCHES if b in per_branch]
        tokens = {b: torch.cat([p[0] for p in per_branch[b]], 1) for b in names}
        temb = {b: torch.cat([p[1] for p in per_branch[b]], 1) for b in names}
        modulation = {b: torch.cat([p[2] for p in per_branch[b]], 1) for b in names}
        positions = {b: torch.cat([p[3] for p in per_branch[b]], 0) for b in names}
        # Row offsets: branch blocks in ``names`` order, groups in order within their branch.
        offsets, start = {}, 0
        for b in names:
            sizes = [p[0].shape[1] for p in per_branch[b]]
            for j, size in enumerate(sizes):
                offsets[(b, j)] = (start, size)
                start += size
        rows = [torch.arange(offsets[key][0], sum(offsets[key])) for key in placed]
        return tokens, temb, modulation, positions, rows

    def _read_out(self, groups, hidden, temb, rows) -> list[Tensor | None]:
        names = list(hidden)
        sizes = [hidden[b].shape[1] for b in names]
        starts = {b: sum(sizes[:i]) for i, b in enumerate(names)}
        outputs: list[Tensor | None] = []
        for g, r in zip(groups, rows):
            if not g.is_noisy:
                outputs.append(None)
                continue
            branch = self.branch_of(g.stream)
            local = slice(int(r[0]) - starts[branch], int(r[-1]) + 1 - starts[branch])
            out = self.heads[g.stream](hidden[branch][:, local], temb[branch][:, local])
            outputs.append(unpatchify(out, self._grid(g), self.config.patch_size) if g.is_video_like else out)
        return outputs

    def _grid(self, g: StreamGroup) -> tuple[int, int, int]:
        _, _, f, h, w = g.data.shape
        p_t, p_h, p_w = self.config.patch_size
        return f // p_t, h // p_h, w // p_w

    def _layout(self, groups: Sequence[StreamGroup]) -> AttentionLayout:
        """The rule's layout for this group structure, built once per structure."""
        return self._remembered_layout(tuple(self._token_groups(groups)), 0)

    def _cached_layout(self, cached: list[TokenGroup], new: list[TokenGroup]) -> AttentionLayout:
        """The layout of a cached pass: ``new`` tokens query the ``cached`` ones and themselves."""
        return self._remembered_layout(tuple(cached) + tuple(new), sum(g.length for g in cached))

    def _remembered_layout(self, groups: tuple[TokenGroup, ...], first_query: int) -> AttentionLayout:
        key = (groups, first_query)
        if key not in self._layouts:
            self._layouts[key] = AttentionLayout.from_tokens(TokenSequence(groups), self.rule, first_query)
            if len(self._layouts) > _LAYOUT_CACHE_SIZE:
                self._layouts.popitem(last=False)
        self._layouts.move_to_end(key)
        return self._layouts[key]

    def _token_groups(self, groups: Sequence[StreamGroup]) -> list[TokenGroup]:
        """The groups in the order the shared attention sees their tokens: branch by branch (as the
        blocks concatenate them), in input order within a branch. Visibility depends on the
        groups' kinds and chunks, never on where they sit, so this order computes the same
        attention as the input order without permuting the tokens of every layer."""
        rank = {b: i for i, b in enumerate(BRANCHES)}
        ordered = sorted(range(len(groups)), key=lambda i: (rank[self.branch_of(groups[i].stream)], i))
        return [TokenGroup(groups[i].kind, self._num_tokens(groups[i]), groups[i].chunk) for i in ordered]

    def _num_tokens(self, g: StreamGroup) -> int:
        return math.prod(self._grid(g)) if g.is_video_like else g.data.shape[1]

    # ------------------------------------------------------------------ validation
    def _check_inputs(self, groups: Sequence[StreamGroup], text: Tensor) -> None:
        c = self.config
        if not groups:
            raise ValueError("AIMTransformer: no input groups")
        if text.dim() != 3 or text.shape[-1] != c.text_dim:
            raise ValueError(f"AIMTransformer: text must be (B, L, {c.text_dim}), got {tuple(text.shape)}")
        batch = text.shape[0]
        for i, g in enumerate(groups):
            where = f"AIMTransformer: group {i} ({g.kind.name}, chunk {g.chunk})"
            if g.stream == "value" and not c.value_stream:
                raise ValueError(f"{where}: this model has no value stream (config.value_stream=False)")
            if g.data.shape[0] != batch:
                raise ValueError(f"{where}: batch {g.data.shape[0]} differs from the text's batch {batch}")
            if g.is_video_like:
                if g.data.dim() != 5 or g.data.shape[1] != c.latent_channels:
                    raise ValueError(f"{where}: latents must be (B, {c.latent_channels}, F, H, W), got {tuple(g.data.shape)}")
                if any(size % p for size, p in zip(g.data.shape[2:], c.patch_size)):
                    raise ValueError(
                        f"{where}: latent grid {tuple(g.data.shape[2:])} is not divisible by the patch size {c.patch_size}"
                    )
                expected = (batch, g.data.shape[2])
            else:
                if g.data.dim() != 3 or g.data.shape[-1] != c.action_channels:
                    raise ValueError(f"{where}: actions must be (B, N, {c.action_channels}), got {tuple(g.data.shape)}")
                expected = (batch, g.data.shape[1])
            if tuple(g.timesteps.shape) != expected:
                raise ValueError(
                    f"{where}: timesteps must be {expected} (one per latent frame or action step), got {tuple(g.timesteps.shape)}"
                )


def _layout_attend(attention_fn: AttentionFn, layout: AttentionLayout):
    def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return attention_fn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout).transpose(1, 2)

    return attend
