"""Our layouts in FlashAttention-4's block-sparse form (and the mask_mod FlexAttention and
FlashAttention-4 evaluate on partial blocks), expanded back to dense masks: they must be the
layout's mask exactly, forward lists and transposed lists alike."""

import math

import pytest
import torch

from aim.ops import (
    BLOCK,
    INTENT_CAUSAL,
    AttentionLayout,
    TokenGroup,
    TokenKind,
    TokenSequence,
    causal,
    full,
)
from aim.ops.block_tables import (
    EMPTY,
    FULL,
    block_table,
    expand_block_lists,
    flash_block_lists,
    layout_mask_mod,
    mask_tables,
)


def clip(samples=1, chunks=3, scale=2):
    return TokenSequence.teacher_forcing_clip(chunks, 37 * scale, 9 * scale, 70 * scale, 70 * scale, 16 * scale, samples)


def cached_pass():
    """A KV-cached pass's layout: cached history and one chunk's noisy tokens as keys, the new
    tokens as queries (the rows before them are empty), as the model's rollout builds it."""
    history = [TokenGroup(TokenKind.OBSERVATION, 150, 0), TokenGroup(TokenKind.OBSERVATION, 150, 1),
               TokenGroup(TokenKind.ACTION, 20, 1)]
    noisy = [TokenGroup(TokenKind.VIDEO, 300, 1), TokenGroup(TokenKind.VALUE, 300, 1),
             TokenGroup(TokenKind.FUTURE_ACTION, 32, 1)]
    cached = sum(g.length for g in history)
    return AttentionLayout.from_tokens(TokenSequence(history + noisy), INTENT_CAUSAL, first_query=cached)


LAYOUTS = {
    "intent-causal clip": lambda: AttentionLayout.from_tokens(clip()),
    "packed intent-causal clips": lambda: AttentionLayout.from_tokens(clip(samples=2, chunks=2, scale=1)),
    "kv-cached pass": cached_pass,
    "packed causal samples": lambda: AttentionLayout.from_tokens(TokenSequence.packed([130, 64, 250]), rule=causal),
    "packed full samples": lambda: AttentionLayout.from_tokens(TokenSequence.packed([256, 300]), rule=full),
    "one block, no partial": lambda: AttentionLayout.from_mask(torch.ones(128, 128, dtype=torch.bool)),
    "random": lambda: AttentionLayout.from_mask(torch.rand(333, 333) < 0.3),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("q_block", [128, 256])
def test_block_lists_expand_to_the_layout(name, q_block):
    layout = LAYOUTS[name]()
    dense = layout.to_dense()
    tables = mask_tables(layout)
    forward, backward = flash_block_lists(layout, q_block)
    assert torch.equal(expand_block_lists(forward, tables), dense)
    assert torch.equal(expand_block_lists(backward, tables, transposed=True), dense)


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("q_block", [128, 256])
def test_block_lists_have_the_shapes_and_order_flash_attention_takes(name, q_block):
    """int32, (1, 1, rows) counts and (1, 1, rows, width <= blocks) indices; each list ascending
    (FlashAttention-4 masks the sequence end on a list's last entry only), in range, and no
    block pair listed twice or as both full and partial; the backward lists are the forward
    lists transposed."""
    layout = LAYOUTS[name]()
    n = layout.num_tokens
    q_rows, k_rows = math.ceil(n / q_block), math.ceil(n / BLOCK)
    forward, backward = flash_block_lists(layout, q_block)
    pairs = {}
    for lists, rows, cols, transposed in ((forward, q_rows, k_rows, False), (backward, k_rows, q_rows, True)):
        assert lists.block_size == (q_block, BLOCK)
        for cnt, idx, kind in ((lists.mask_block_cnt, lists.mask_block_idx, "partial"),
                               (lists.full_block_cnt, lists.full_block_idx, "full")):
            assert cnt.dtype == idx.dtype == torch.int32
            assert cnt.shape == (1, 1, rows) and idx.shape[:3] == (1, 1, rows) and 1 <= idx.shape[3] <= cols
            for row in range(rows):
                listed = idx[0, 0, row, : int(cnt[0, 0, row])].tolist()
                assert listed == sorted(set(listed)) and all(0 <= c < cols for c in listed)
                for c in listed:
                    pair = (c, row) if transposed else (row, c)
                    pairs.setdefault(transposed, {})
                    assert pair not in pairs[transposed], f"{pair} listed twice"
                    pairs[transposed][pair] = kind
    assert pairs.get(False, {}) == pairs.get(True, {})


def test_the_last_key_block_is_never_full_when_the_sequence_ends_inside_it():
    """FlashAttention-4 skips the mask_mod on full blocks: a block reaching past the sequence end
    must be partial (its mask says which columns exist)."""
    layout = AttentionLayout.from_mask(torch.ones(300, 300, dtype=torch.bool))
    table = block_table(layout)
    assert (table[:, -1] >= 0).all() and (table[-1] >= 0).all() and (table[:2, :2] == FULL).all()


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_mask_mod_is_the_layout_on_every_pair(name):
    layout = LAYOUTS[name]()
    n = layout.num_tokens
    mask_mod = layout_mask_mod(mask_tables(layout))
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    assert torch.equal(mask_mod(0, 0, q, k), layout.to_dense())
    # Padding past the end reads the last row/column instead of outside the tables.
    past = torch.arange(n, n + 5)
    assert torch.equal(mask_mod(0, 0, past[:, None], k), layout.to_dense()[-1:].expand(5, n))


def test_coarse_query_blocks_are_full_only_where_both_halves_are():
    mask = torch.zeros(512, 512, dtype=torch.bool)
    mask[:256, :128] = True  # full for query blocks 0 and 1: full for the 256-row block 0
    mask[:128, 128:256] = True  # full for query block 0 only: partial for the 256-row block 0
    layout = AttentionLayout.from_mask(mask)
    forward, _ = flash_block_lists(layout, 256)
    assert forward.full_block_cnt[0, 0].tolist() == [1, 0] and forward.full_block_idx[0, 0, 0, 0] == 0
    assert forward.mask_block_cnt[0, 0].tolist() == [1, 0] and forward.mask_block_idx[0, 0, 0, 0] == 1
    assert (block_table(layout)[2:] == EMPTY).all()


def test_bad_query_block_is_refused():
    with pytest.raises(ValueError, match="multiple of 128"):
        flash_block_lists(LAYOUTS["random"](), 192)


def test_flash_attention_accepts_the_tensors():
    """FlashAttention-4's own shape inference takes our forward and backward lists (runs where
    flash-attn-4 is installed; it needs no GPU for this)."""
    sparsity = pytest.importorskip("flash_attn.cute.block_sparsity")
    layout = LAYOUTS["packed intent-causal clips"]()
    n = layout.num_tokens
    forward, backward = flash_block_lists(layout, 128)
    torch_form = sparsity.BlockSparseTensorsTorch(
        forward.mask_block_cnt, forward.mask_block_idx, forward.full_block_cnt, forward.full_block_idx,
        block_size=forward.block_size)
    count_shape, index_shape, q_subtile = sparsity.infer_block_sparse_expected_shapes(
        torch_form, batch_size=2, num_head=3, seqlen_q=n, seqlen_k=n, m_block_size=128, n_block_size=128,
        q_stage=1, context="", sparse_block_size_q=128, sparse_block_size_kv=128)
    assert count_shape == (2, 3, math.ceil(n / 128)) and q_subtile == 1
    bwd_count, bwd_index = sparsity.get_block_sparse_expected_shapes_bwd(2, 3, n, n, 64, 128, 2)
    assert backward.mask_block_cnt.shape[-1] == bwd_count[-1] and backward.mask_block_idx.shape[2] == bwd_index[2]
