"""The backends that can be checked on a CPU: FlexAttention's forward (it has no CPU backward)
against the float64 reference through aim.ops.attention, the xformers bias (pure tensor code;
xformers itself has no CPU path) against the layout's mask, and the cross-attention entry."""

import pytest
import torch
import torch.nn.functional as F

from aim.ops import (
    AttentionLayout,
    TokenSequence,
    attention,
    causal,
    dense_attention,
    full,
)
from aim.ops.backend import ENV_VAR
from aim.ops.reference import attention_reference
from aim.ops.xformers_backend import (
    PackedSegments,
    layout_bias,
    packed_segments,
    tensor_bias,
)

from .test_block_tables import LAYOUTS, cached_pass

TOLERANCE = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}


def rel_err(x, ref):
    assert torch.isfinite(x).all()
    return ((x.double() - ref).norm() / ref.norm()).item()


def with_empty_rows():
    mask = torch.rand(300, 300) < 0.3
    mask[7] = False
    mask[200:230] = False
    return AttentionLayout.from_mask(mask)


FLEX_LAYOUTS = {"kv-cached pass": cached_pass, "random with empty rows": with_empty_rows,
                "packed intent-causal clips": LAYOUTS["packed intent-causal clips"]}


@pytest.mark.parametrize("name", list(FLEX_LAYOUTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_flex_forward_matches_reference(monkeypatch, name, dtype):
    monkeypatch.setenv(ENV_VAR, "flex")
    layout = FLEX_LAYOUTS[name]()
    q, k, v = (torch.randn(2, 3, layout.num_tokens, 64, dtype=dtype) for _ in range(3))
    mask = layout.to_dense()
    with torch.no_grad():
        out = attention(q, k, v, layout)
    ref, _ = attention_reference(q, k, v, mask)
    assert out.dtype == dtype and out.shape == q.shape
    assert rel_err(out, ref) < TOLERANCE[dtype]
    assert (out[:, :, ~mask.any(1)] == 0).all()  # rows that see no key


def test_flex_refuses_a_cpu_backward(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "flex")
    layout = with_empty_rows()
    q, k, v = (torch.randn(1, 2, layout.num_tokens, 64, requires_grad=True) for _ in range(3))
    with pytest.raises(ValueError, match="no backward on the CPU"):
        attention(q, k, v, layout)


@pytest.mark.parametrize("name", list(LAYOUTS) + ["random with empty rows"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_xformers_bias_expands_to_the_mask(name, dtype):
    layout = with_empty_rows() if name == "random with empty rows" else LAYOUTS[name]()
    mask = layout.to_dense()
    bias = layout_bias(layout, torch.device("cpu"), dtype)
    if isinstance(bias, PackedSegments):
        assert torch.equal(bias.to_dense(), mask)
        return
    assert bias.bias.dtype == dtype and bias.bias.shape == mask.shape
    assert bias.bias.stride(0) % 16 == 0  # rows 16-byte aligned, as xformers requires
    assert torch.equal(bias.has_key, mask.any(1))
    rows = bias.has_key
    assert torch.equal(bias.bias[rows] == 0, mask[rows]) and torch.isinf(bias.bias[rows][~mask[rows]]).all()
    assert (bias.bias[~rows] == 0).all()  # computed over all keys, then zeroed
    # Softmax with the bias is attention under the mask on every row that sees a key.
    q, k, v = (torch.randn(1, 2, layout.num_tokens, 32, dtype=torch.float64) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.bias.double()) * rows[:, None]
    assert rel_err(out, attention_reference(q, k, v, mask)[0]) < 1e-10


def test_plain_packing_becomes_block_diagonal():
    for rule, is_causal in ((full, False), (causal, True)):
        layout = AttentionLayout.from_tokens(TokenSequence.packed([130, 64, 250]), rule=rule)
        assert packed_segments(layout.to_dense()) == PackedSegments((130, 64, 250), is_causal)
    # Intent-causal clips, even packed, and KV-cached passes need the tensor bias.
    for name in ("packed intent-causal clips", "intent-causal clip", "kv-cached pass"):
        assert packed_segments(LAYOUTS[name]().to_dense()) is None
    mask = torch.ones(10, 10, dtype=torch.bool)
    mask[3, 4] = False
    assert packed_segments(mask) is None
    assert not tensor_bias(mask, torch.float16).bias[3, 3].isinf()


def test_block_diagonal_bias_is_xformers_own():
    """xformers' BlockDiagonalMask from our segments materialises to our mask (where the Python
    part of xformers imports)."""
    attn_bias = pytest.importorskip("xformers.ops.fmha.attn_bias")
    for segments in (PackedSegments((130, 64, 250), False), PackedSegments((5, 9), True)):
        kind = attn_bias.BlockDiagonalCausalMask if segments.causal else attn_bias.BlockDiagonalMask
        n = sum(segments.lengths)
        bias = kind.from_seqlens(list(segments.lengths)).materialize((n, n), dtype=torch.float32)
        assert torch.equal(bias == 0, segments.to_dense())


def test_cross_attention_on_cpu_is_sdpa(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    q = torch.randn(2, 3, 40, 16, requires_grad=True)
    k, v = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 16)
    assert torch.equal(dense_attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    monkeypatch.setenv(ENV_VAR, "flash")
    with pytest.raises(ValueError, match="CUDA only"):
        dense_attention(q, k, v)
