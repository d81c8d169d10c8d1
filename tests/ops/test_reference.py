"""The float64 reference against what benchmarks set beside it: SDPA with the dense mask and
FlexAttention with the layout's BlockMask compute the reference's function, so benchmarks compare
like with like."""

import pytest
import torch

from aim.ops import INTENT_CAUSAL, AttentionLayout, TokenSequence
from aim.ops.flex_backend import flex_block_mask
from aim.ops.reference import attention_reference, group_mask_mod
from aim.ops.sdpa_backend import masked_sdpa


SEQUENCE = TokenSequence.teacher_forcing_clip(3, 40, 8, 80, 80, 16, samples=2)


def layout_and_inputs(n_heads=2, head_dim=64):
    layout = AttentionLayout.from_tokens(SEQUENCE)
    q, k, v = (torch.randn(1, n_heads, layout.num_tokens, head_dim) for _ in range(3))
    return layout, q, k, v


def test_sdpa_twin_matches_float64_reference():
    layout, q, k, v = layout_and_inputs()
    mask = layout.dense_mask("cpu")
    out = masked_sdpa(q, k, v, mask)
    ref, _ = attention_reference(q, k, v, mask)
    assert (out.double() - ref).norm() / ref.norm() < 1e-5


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("computed_mask_mod", [False, True])
def test_flex_block_mask_has_the_layouts_blocks_and_function(computed_mask_mod):
    flex_attention = pytest.importorskip("torch.nn.attention.flex_attention").flex_attention
    layout, q, k, v = layout_and_inputs()
    mask_mod = group_mask_mod(SEQUENCE, INTENT_CAUSAL, "cpu") if computed_mask_mod else None
    block_mask = flex_block_mask(layout, "cpu", mask_mod)
    kinds = layout.block_kinds()
    assert torch.equal(block_mask.kv_num_blocks[0, 0], (kinds == 1).sum(-1).int())
    assert torch.equal(block_mask.full_kv_num_blocks[0, 0], (kinds == 2).sum(-1).int())
    out = flex_attention(q, k, v, block_mask=block_mask)
    ref, _ = attention_reference(q, k, v, layout.to_dense())
    assert (out.double() - ref).norm() / ref.norm() < 1e-5
