"""The layout builder: block classification, transposed lists, and the spec's rule tables."""

import itertools

import pytest
import torch

from aim.ops import (
    ACTIONS_SEE_VIDEO,
    BLOCK,
    INTENT_CAUSAL,
    TEACHER_FORCING,
    AttentionLayout,
    GroupRule,
    Relation,
    TokenGroup,
    TokenKind,
    TokenSequence,
    causal,
    full,
    rule_by_name,
)

O, A, X, M, AH = TokenKind


@pytest.mark.parametrize("n", [1, 127, 128, 129, 300, 513])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
def test_from_mask_round_trips(n, density):
    mask = torch.rand(n, n) < density
    layout = AttentionLayout.from_mask(mask)
    assert torch.equal(layout.to_dense(), mask)


def test_block_kinds_match_the_mask():
    n = 4 * BLOCK + 37
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[: 2 * BLOCK, : 2 * BLOCK] = True  # two full blocks wide
    mask[2 * BLOCK : 3 * BLOCK, 5] = True  # one column: partial
    mask[4 * BLOCK :, 4 * BLOCK :] = True  # ragged corner: partial (padding is never visible)
    layout = AttentionLayout.from_mask(mask)
    kinds = layout.block_kinds()
    expected = torch.zeros(5, 5, dtype=torch.int8)
    expected[:2, :2] = 2
    expected[2, 0] = 1
    expected[4, 4] = 1
    assert torch.equal(kinds, expected)
    assert layout.num_partial_blocks == 2


def test_transposed_lists_hold_the_same_pairs():
    mask = torch.rand(700, 700) < 0.3
    mask[:, 300:450] = False  # some key blocks nobody sees
    layout = AttentionLayout.from_mask(mask)
    by_query = set()
    for qb in range(layout.num_blocks):
        for e in range(layout.q_ptr[qb], layout.q_ptr[qb + 1]):
            by_query.add((qb, int(layout.q_idx[e]), int(layout.q_partial[e])))
    by_key = set()
    for kb in range(layout.num_blocks):
        entries = range(layout.k_ptr[kb], layout.k_ptr[kb + 1])
        rows = [int(layout.k_idx[e]) for e in entries]
        assert rows == sorted(rows)
        by_key.update((int(layout.k_idx[e]), kb, int(layout.k_partial[e])) for e in entries)
    assert by_query == by_key
    assert all(layout.q_idx[layout.q_ptr[i] : layout.q_ptr[i + 1]].diff().gt(0).all() for i in range(layout.num_blocks))


def test_layout_tensors_are_int32_and_move_devices():
    layout = AttentionLayout.from_mask(torch.rand(200, 200) < 0.5)
    assert all(t.dtype == torch.int32 and t.is_contiguous() for t in layout.tensors())
    assert layout.to("cpu") is layout
    assert layout.masks.shape[1:] == (BLOCK, BLOCK // 32)


# --- The spec's table (§5), written out independently of GroupRule, one token pair at a time.
def spec_intent_causal(qk, qc, kk, kc) -> bool:
    clean = (O, A)
    if qk in clean:
        return kk in clean and kc <= qc
    if kk == O:
        return kc == qc if qk == AH else kc <= qc  # Ah sees only the current obs
    if kk == A:
        return qk in (X, AH) and kc <= qc  # past actions: not for the value stream
    if kc != qc:
        return False  # noisy tokens of another chunk: never
    allowed = {X: {X}, M: {X, M}, AH: {M, AH}}[qk]
    return kk in allowed


def _small_clip(samples=2, chunks=3):
    return TokenSequence.teacher_forcing_clip(chunks, 3, 2, 4, 4, 2, samples=samples)


def test_intent_causal_matches_the_spec_table_token_by_token():
    seq = _small_clip()
    meta = seq.meta
    got = INTENT_CAUSAL(meta, meta)
    for i, j in itertools.product(range(len(seq)), repeat=2):
        same_sample = meta.sample[i] == meta.sample[j]
        want = bool(same_sample) and spec_intent_causal(
            TokenKind(int(meta.kind[i])), int(meta.chunk[i]), TokenKind(int(meta.kind[j])), int(meta.chunk[j])
        )
        assert bool(got[i, j]) == want, (i, j, meta.kind[i], meta.chunk[i], meta.kind[j], meta.chunk[j])


def test_intent_causal_key_properties():
    seq = _small_clip(samples=1, chunks=3)
    meta = seq.meta
    mask = INTENT_CAUSAL(meta, meta)
    kind, chunk = meta.kind, meta.chunk
    actions = kind == AH
    assert not (mask[actions][:, kind == X]).any(), "future actions must never see predicted video"
    assert (mask[actions][:, kind == M]).any(), "future actions read intent through the value map"
    past_obs = (kind[None, :] == O) & (chunk[None, :] < chunk[:, None])
    assert not (mask & past_obs & actions[:, None]).any(), "actions see only the current observation"
    assert not (mask[kind == M][:, kind == A]).any(), "the value stream never sees past actions"
    noisy = kind >= X
    other_chunk_noisy = noisy[None, :] & (chunk[None, :] != chunk[:, None])
    assert not (mask & other_chunk_noisy).any(), "nothing attends to noisy tokens of another chunk"


def test_samples_never_see_each_other():
    seq = _small_clip(samples=3)
    meta = seq.meta
    for rule in (INTENT_CAUSAL, TEACHER_FORCING, full, causal):
        visible = rule(meta, meta)
        assert not (visible & (meta.sample[:, None] != meta.sample[None, :])).any(), rule


def test_teacher_forcing_lets_actions_see_video():
    meta = _small_clip(samples=1).meta
    mask = TEACHER_FORCING(meta, meta)
    same_chunk = meta.chunk[:, None] == meta.chunk[None, :]
    action_to_video = (meta.kind[:, None] == AH) & (meta.kind[None, :] == X)
    assert mask[action_to_video & same_chunk].all()
    assert not mask[action_to_video & ~same_chunk].any()


def test_causal_and_full_on_packed_samples():
    seq = TokenSequence.packed([5, 3, 7])
    n = len(seq)
    sample = seq.meta.sample
    same = sample[:, None] == sample[None, :]
    assert torch.equal(full(seq.meta, seq.meta), same)
    assert torch.equal(causal(seq.meta, seq.meta), same & torch.ones(n, n, dtype=torch.bool).tril())


def test_from_tokens_compiles_the_rule_exactly():
    seq = TokenSequence.teacher_forcing_clip(2, 100, 16, 180, 180, 32, samples=2)
    layout = AttentionLayout.from_tokens(seq)
    assert torch.equal(layout.to_dense(), INTENT_CAUSAL(seq.meta, seq.meta))


@pytest.mark.parametrize("first_query", [1, 127, 128, 300])
def test_cached_pass_layout_keeps_only_the_new_query_rows(first_query):
    seq = TokenSequence.teacher_forcing_clip(2, 100, 16, 180, 180, 32)
    layout = AttentionLayout.from_tokens(seq, INTENT_CAUSAL, first_query)
    expected = INTENT_CAUSAL(seq.meta, seq.meta)
    expected[:first_query] = False
    assert torch.equal(layout.to_dense(), expected)
    assert int(layout.q_ptr[first_query // BLOCK]) == 0  # query blocks holding only cached rows: no work
    with pytest.raises(ValueError, match="first_query"):
        AttentionLayout.from_tokens(seq, INTENT_CAUSAL, len(seq))


def test_actions_see_video_differs_from_intent_causal_in_one_cell_only():
    seq = TokenSequence.teacher_forcing_clip(2, 6, 4, 8, 8, 4)
    ablation, spec = ACTIONS_SEE_VIDEO(seq.meta, seq.meta), INTENT_CAUSAL(seq.meta, seq.meta)
    differs = ablation != spec
    kind, chunk = seq.meta.kind, seq.meta.chunk
    expected = (kind[:, None] == AH) & (kind[None, :] == X) & (chunk[:, None] == chunk[None, :])
    assert torch.equal(differs, expected) and expected.any()
    assert rule_by_name("actions_see_video") is ACTIONS_SEE_VIDEO
    with pytest.raises(ValueError, match="unknown attention rule"):
        rule_by_name("everything")


def test_aim_clip_is_block_sparse():
    # A 16k-token clip shaped like AIM's teacher forcing: 4 chunks of 2 latent frames.
    seq = TokenSequence.teacher_forcing_clip(4, 880, 32, 1760, 1760, 32)
    layout = AttentionLayout.from_tokens(seq)
    assert 15_000 < layout.num_tokens < 20_000
    assert 0.2 < layout.block_density < 0.35  # docs/method.md §5: about 70-75% of blocks are empty


def test_custom_group_rule():
    only_own_group = GroupRule("own", tuple(tuple(Relation.SAME_CHUNK if i == j else Relation.NEVER for j in range(5)) for i in range(5)))
    seq = TokenSequence([TokenGroup(O, 4, 0), TokenGroup(O, 4, 1), TokenGroup(X, 3, 1)])
    mask = only_own_group(seq.meta, seq.meta)
    assert mask[:4, :4].all() and not mask[:4, 4:].any() and mask[4:8, 4:8].all() and mask[8:, 8:].all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="square"):
        AttentionLayout.from_mask(torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        AttentionLayout.from_mask(torch.ones(3, 3))
    with pytest.raises(ValueError, match="rule returned"):
        AttentionLayout.from_rule(lambda rows: torch.ones(rows.numel(), 5, dtype=torch.bool), 6)
    with pytest.raises(ValueError, match="5x5"):
        GroupRule("bad", ((Relation.NEVER,),))
    with pytest.raises(ValueError, match="num_chunks"):
        TokenSequence.teacher_forcing_clip(0, 1, 1, 1, 1, 1)
