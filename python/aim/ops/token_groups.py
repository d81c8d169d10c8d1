"""Token groups of an AIM sequence and the visibility rules between them (docs/method.md §5).

A training or inference sequence is a concatenation of *groups*: runs of tokens that share one
kind (clean observation, clean executed action, noisy future video / value / action), one chunk
index and one sample. The intent-causal rule decides visibility from the two tokens' groups
alone, so it is written here as a table over kinds, and compiled into a block map by
:mod:`aim.ops.layout`.

Chunk indices of clean history tokens are the chunk at whose *start* they are known: O_c is the
observation the model sees when it generates chunk c ("current obs" of chunk c), A_c the actions
executed before chunk c starts. So for a query of chunk c, past observations are O_c' with
c' < c, and past actions are A_c' with c' <= c.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


class TokenKind(enum.IntEnum):
    OBSERVATION = 0  # clean observation latents (history)
    ACTION = 1  # clean executed actions (history)
    VIDEO = 2  # noisy future video X_c
    VALUE = 3  # noisy future value map M_c
    FUTURE_ACTION = 4  # noisy future actions Ah_c


class Relation(enum.IntEnum):
    """How a query's chunk must relate to a key's chunk for the key to be visible."""

    NEVER = 0
    SAME_CHUNK = 1  # key chunk == query chunk
    UP_TO_CHUNK = 2  # key chunk <= query chunk
    BEFORE_CHUNK = 3  # key chunk < query chunk


_N, _S, _U = Relation.NEVER, Relation.SAME_CHUNK, Relation.UP_TO_CHUNK


@dataclass(frozen=True)
class GroupRule:
    """Visibility as a table: ``table[query kind][key kind]`` is a :class:`Relation`.

    Tokens of different samples never see each other, whatever the table says.
    """

    name: str
    table: tuple[tuple[Relation, ...], ...]
    # Visibility depends only on the two tokens' groups, so it can be evaluated per group pair.
    group_level = True

    def __post_init__(self) -> None:
        n = len(TokenKind)
        if len(self.table) != n or any(len(row) != n for row in self.table):
            raise ValueError(f"GroupRule {self.name!r}: table must be {n}x{n} (one row/column per TokenKind)")

    def __call__(self, query: "TokenMeta", key: "TokenMeta") -> torch.Tensor:
        table = torch.tensor([[int(r) for r in row] for row in self.table], dtype=torch.int8)
        relation = table[query.kind[:, None], key.kind[None, :]]
        qc, kc = query.chunk[:, None], key.chunk[None, :]
        visible = (
            ((relation == Relation.SAME_CHUNK) & (kc == qc))
            | ((relation == Relation.UP_TO_CHUNK) & (kc <= qc))
            | ((relation == Relation.BEFORE_CHUNK) & (kc < qc))
        )
        return visible & (query.sample[:, None] == key.sample[None, :])


# Rows: query kind; columns: key kind, both in TokenKind order (O, A, X, M, Ah).
INTENT_CAUSAL = GroupRule(
    "intent_causal",
    (
        (_U, _U, _N, _N, _N),  # O: clean history, block-causal over clean history
        (_U, _U, _N, _N, _N),  # A: likewise
        (_U, _U, _S, _N, _N),  # X_c: current+past obs, past actions, its own chunk's video
        (_U, _N, _S, _S, _N),  # M_c: current+past obs, X_c, M_c; no past actions
        (_S, _U, _N, _S, _S),  # Ah_c: current obs only, past actions, M_c, Ah_c; never X_c
    ),
)

# LingBot-VA style teacher forcing: noisy tokens of chunk c see all clean history up to c and
# every noisy token of their own chunk (no intent restriction).
TEACHER_FORCING = GroupRule(
    "teacher_forcing",
    (
        (_U, _U, _N, _N, _N),
        (_U, _U, _N, _N, _N),
        (_U, _U, _S, _S, _S),
        (_U, _U, _S, _S, _S),
        (_U, _U, _S, _S, _S),
    ),
)


# The ablation of docs/method.md §5's one restriction (the paper reports none): future actions may also read
# their chunk's future video, so future information reaches them both directly and through M_c.
ACTIONS_SEE_VIDEO = GroupRule(
    "actions_see_video",
    INTENT_CAUSAL.table[:4] + ((_S, _U, _S, _S, _S),),
)

RULES: dict[str, GroupRule] = {rule.name: rule for rule in (INTENT_CAUSAL, ACTIONS_SEE_VIDEO, TEACHER_FORCING)}


def rule_by_name(name: str) -> GroupRule:
    """The group rule called ``name`` (a key of :data:`RULES`)."""
    if name not in RULES:
        raise ValueError(f"unknown attention rule {name!r}; known: {sorted(RULES)}")
    return RULES[name]


@dataclass(frozen=True)
class TokenGroup:
    kind: TokenKind
    length: int
    chunk: int = 0
    sample: int = 0


@dataclass(frozen=True)
class TokenMeta:
    """Per-token metadata (int64 tensors of equal length): kind, chunk, sample, and the token's
    index in the whole sequence."""

    kind: torch.Tensor
    chunk: torch.Tensor
    sample: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return self.kind.numel()

    def rows(self, index: torch.Tensor) -> "TokenMeta":
        return TokenMeta(self.kind[index], self.chunk[index], self.sample[index], self.index[index])


class TokenSequence:
    """An ordered list of token groups: the sequence the shared attention runs over."""

    def __init__(self, groups: Sequence[TokenGroup]):
        groups = [g for g in groups if g.length > 0]
        if not groups:
            raise ValueError("TokenSequence needs at least one non-empty group")
        for g in groups:
            if g.length < 0 or g.chunk < 0 or g.sample < 0:
                raise ValueError(f"TokenSequence: negative length, chunk or sample in {g}")
        self.groups = tuple(groups)
        lengths = torch.tensor([g.length for g in groups])
        self.group_meta = TokenMeta(
            kind=torch.tensor([int(g.kind) for g in groups]),
            chunk=torch.tensor([g.chunk for g in groups]),
            sample=torch.tensor([g.sample for g in groups]),
            index=torch.cumsum(lengths, 0) - lengths,
        )
        self.group_of_token = torch.repeat_interleave(torch.arange(len(groups)), lengths)
        per_token = self.group_meta.rows(self.group_of_token)
        self.meta = TokenMeta(per_token.kind, per_token.chunk, per_token.sample, torch.arange(int(lengths.sum())))

    def __len__(self) -> int:
        return len(self.meta)

    @classmethod
    def teacher_forcing_clip(
        cls,
        num_chunks: int,
        observation_tokens: int,
        action_tokens: int,
        video_tokens: int,
        value_tokens: int,
        future_action_tokens: int,
        samples: int = 1,
    ) -> "TokenSequence":
        """The clip layout of Stage I training: per sample, per chunk c, the clean history known
        at the start of chunk c (O_c, A_c) followed by the noisy chunk (X_c, M_c, Ah_c).

        ``action_tokens`` of chunk 0 are taken as zero (no action executed before the clip).
        """
        if num_chunks < 1 or samples < 1:
            raise ValueError(f"num_chunks and samples must be >= 1, got {num_chunks}, {samples}")
        groups = []
        for s in range(samples):
            for c in range(num_chunks):
                groups += [
                    TokenGroup(TokenKind.OBSERVATION, observation_tokens, c, s),
                    TokenGroup(TokenKind.ACTION, action_tokens if c > 0 else 0, c, s),
                    TokenGroup(TokenKind.VIDEO, video_tokens, c, s),
                    TokenGroup(TokenKind.VALUE, value_tokens, c, s),
                    TokenGroup(TokenKind.FUTURE_ACTION, future_action_tokens, c, s),
                ]
        return cls(groups)

    @classmethod
    def packed(cls, sample_lengths: Sequence[int]) -> "TokenSequence":
        """Plain variable-length packing: one observation group per sample (for full/causal rules)."""
        return cls([TokenGroup(TokenKind.OBSERVATION, n, 0, s) for s, n in enumerate(sample_lengths)])


TokenRule = Callable[[TokenMeta, TokenMeta], torch.Tensor]


def full(query: TokenMeta, key: TokenMeta) -> torch.Tensor:
    """Bidirectional attention within each sample."""
    return query.sample[:, None] == key.sample[None, :]


full.group_level = True


def causal(query: TokenMeta, key: TokenMeta) -> torch.Tensor:
    """Token-causal attention within each sample."""
    return full(query, key) & (key.index[None, :] <= query.index[:, None])
