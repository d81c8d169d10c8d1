"""Native ops of ``aim`` and their plain PyTorch twins."""

from aim.ops.attention import attention
from aim.ops.backend import (
    AttentionBackend,
    Platform,
    attention_backend,
    resolve_attention_backend,
    resolve_dense_backend,
)
from aim.ops.dense_attention import dense_attention
from aim.ops.layout import BLOCK, AttentionLayout
from aim.ops.token_groups import (
    ACTIONS_SEE_VIDEO,
    INTENT_CAUSAL,
    RULES,
    TEACHER_FORCING,
    GroupRule,
    Relation,
    TokenGroup,
    TokenKind,
    TokenSequence,
    causal,
    full,
    rule_by_name,
)
from aim.ops.value_maps import render_value_maps, sample_value_maps

__all__ = [
    "ACTIONS_SEE_VIDEO",
    "BLOCK",
    "INTENT_CAUSAL",
    "RULES",
    "TEACHER_FORCING",
    "AttentionBackend",
    "AttentionLayout",
    "Platform",
    "GroupRule",
    "Relation",
    "TokenGroup",
    "TokenKind",
    "TokenSequence",
    "attention",
    "attention_backend",
    "causal",
    "dense_attention",
    "full",
    "render_value_maps",
    "resolve_attention_backend",
    "resolve_dense_backend",
    "rule_by_name",
    "sample_value_maps",
]
