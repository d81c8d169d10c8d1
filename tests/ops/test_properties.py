"""Property tests: layouts of random token groups against the visibility rule evaluated group by
group, the native attention on them against the float64 twin, and the value-map ops on random
cameras and points against their twins. Examples are drawn by hypothesis (the ``aim`` profile in
tests/conftest.py: the same examples on every run)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aim.ops import BLOCK, RULES, AttentionLayout, Relation, TokenGroup, TokenKind, TokenSequence, attention, causal
from aim.ops import render_value_maps, sample_value_maps
from aim.ops.reference import attention_reference
from aim.ops.value_maps_reference import render_value_maps_reference, sample_value_maps_reference

GROUP = st.tuples(st.sampled_from(list(TokenKind)), st.integers(0, 150), st.integers(0, 3), st.integers(0, 2))


def token_groups(max_groups: int = 10, max_tokens: int = 1200):
    return st.lists(GROUP, min_size=1, max_size=max_groups).filter(
        lambda groups: 0 < sum(length for _, length, _, _ in groups) <= max_tokens)


def sequence_of(groups) -> TokenSequence:
    return TokenSequence([TokenGroup(kind, length, chunk, sample) for kind, length, chunk, sample in groups])


def rule_mask(groups, rule) -> torch.Tensor:
    """The rule's visibility written out group pair by group pair (no tensors of token metadata)."""
    spans, start = [], 0
    for _, length, _, _ in groups:
        spans.append((start, start + length))
        start += length
    mask = torch.zeros(start, start, dtype=torch.bool)
    for (q_kind, _, q_chunk, q_sample), (q0, q1) in zip(groups, spans):
        for (k_kind, _, k_chunk, k_sample), (k0, k1) in zip(groups, spans):
            relation = rule.table[q_kind][k_kind]
            visible = q_sample == k_sample and (
                (relation == Relation.SAME_CHUNK and k_chunk == q_chunk)
                or (relation == Relation.UP_TO_CHUNK and k_chunk <= q_chunk)
                or (relation == Relation.BEFORE_CHUNK and k_chunk < q_chunk))
            mask[q0:q1, k0:k1] = visible
    return mask


def visited_tiles(mask: torch.Tensor) -> int:
    n = mask.shape[0]
    blocks = -(-n // BLOCK)
    padded = torch.zeros(blocks * BLOCK, blocks * BLOCK, dtype=torch.bool)
    padded[:n, :n] = mask
    return int(padded.reshape(blocks, BLOCK, blocks, BLOCK).any(dim=(1, 3)).sum())


@given(groups=token_groups(), rule=st.sampled_from(sorted(RULES)), first_query_fraction=st.floats(0, 0.99))
def test_layout_of_random_groups_is_the_rule(groups, rule, first_query_fraction):
    tokens = sequence_of(groups)
    first_query = int(first_query_fraction * len(tokens))
    layout = AttentionLayout.from_tokens(tokens, RULES[rule], first_query)
    expected = rule_mask(groups, RULES[rule])
    expected[:first_query] = False
    assert torch.equal(layout.to_dense(), expected)
    assert layout.num_visited_blocks == visited_tiles(expected)


@given(groups=token_groups())
def test_causal_layout_of_random_groups_is_causal_within_each_sample(groups):
    tokens = sequence_of(groups)
    samples = torch.tensor([sample for _, length, _, sample in groups for _ in range(length)])
    index = torch.arange(len(samples))
    expected = (samples[:, None] == samples[None, :]) & (index[None, :] <= index[:, None])
    assert torch.equal(AttentionLayout.from_tokens(tokens, causal).to_dense(), expected)


@settings(max_examples=12)
@given(groups=token_groups(max_groups=8, max_tokens=420), rule=st.sampled_from(sorted(RULES)),
       head_dim=st.sampled_from([8, 24, 64, 80]), seed=st.integers(0, 2**31 - 1))
def test_attention_on_random_groups_matches_the_float64_twin(groups, rule, head_dim, seed):
    layout = AttentionLayout.from_tokens(sequence_of(groups), RULES[rule])
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, 2, layout.num_tokens, head_dim, generator=generator).requires_grad_() for _ in range(3))
    dout = torch.randn(q.shape, generator=generator)
    out = attention(q, k, v, layout)
    out.backward(dout)
    reference_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    reference, _ = attention_reference(*reference_inputs, layout.to_dense())
    reference.backward(dout.double())
    for got, want in zip((out, q.grad, k.grad, v.grad), (reference, *(t.grad for t in reference_inputs))):
        assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-5)


def random_cameras(generator: torch.Generator, batch, frames, views, height, width):
    """Intrinsics with random focal lengths, skew and principal points in the image; extrinsics with
    random rotations (up to about 30 degrees) and translations, per frame."""
    def uniform(*shape, low, high):
        return low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)

    k = torch.zeros(batch, views, 3, 3, dtype=torch.float64)
    k[..., 0, 0] = uniform(batch, views, low=0.5 * width, high=2.0 * width)
    k[..., 1, 1] = uniform(batch, views, low=0.5 * height, high=2.0 * height)
    k[..., 0, 1] = uniform(batch, views, low=-0.05 * width, high=0.05 * width)
    k[..., 0, 2] = uniform(batch, views, low=0, high=width - 1)
    k[..., 1, 2] = uniform(batch, views, low=0, high=height - 1)
    k[..., 2, 2] = 1
    axis_angle = uniform(batch, frames, views, 3, low=-0.3, high=0.3)
    skew = torch.zeros(batch, frames, views, 3, 3, dtype=torch.float64)
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -axis_angle[..., 2], axis_angle[..., 1], -axis_angle[..., 0]
    e = torch.eye(4, dtype=torch.float64).repeat(batch, frames, views, 1, 1)
    e[..., :3, :3] = torch.linalg.matrix_exp(skew - skew.transpose(-1, -2))
    e[..., :3, 3] = uniform(batch, frames, views, 3, low=-0.3, high=0.3)
    return k, e


def random_points(generator: torch.Generator, batch, frames, points):
    """Around 2 m in front of the cameras, spread wide enough that some fall off the image and a
    few lie behind the camera."""
    p = torch.randn(batch, frames, points, 3, generator=generator, dtype=torch.float64)
    p[..., :2] *= 0.8
    p[..., 2] = 2.0 + 1.2 * p[..., 2]
    return p


SCENE = dict(batch=st.integers(1, 2), frames=st.integers(1, 3), views=st.integers(1, 3), points=st.integers(1, 6),
             height=st.integers(2, 40), width=st.integers(2, 40), seed=st.integers(0, 2**31 - 1))


@given(**SCENE, r_world=st.floats(0.0, 0.3), sigma_min=st.floats(0.3, 3.0), sigma_spread=st.floats(0.0, 10.0),
       combine=st.sampled_from(["max", "sum"]))
def test_render_on_random_cameras_matches_its_twin(batch, frames, views, points, height, width, seed, r_world,
                                                   sigma_min, sigma_spread, combine):
    generator = torch.Generator().manual_seed(seed)
    k, e = random_cameras(generator, batch, frames, views, height, width)
    p = random_points(generator, batch, frames, points)
    mask = torch.rand(batch, frames, points, generator=generator) > 0.2
    args = (height, width, r_world, sigma_min, sigma_min + sigma_spread, combine)
    got = render_value_maps(p, mask, k, e, *args)
    want = render_value_maps_reference(p, mask, k, e, *args)
    assert torch.allclose(got, want, rtol=0, atol=1e-10)


@given(**SCENE)
def test_sample_on_random_cameras_matches_its_twin(batch, frames, views, points, height, width, seed):
    generator = torch.Generator().manual_seed(seed)
    k, e = random_cameras(generator, batch, frames, views, height, width)
    p = random_points(generator, batch, frames, points)
    maps = torch.rand(batch, frames, views, height, width, generator=generator, dtype=torch.float64)
    maps.requires_grad_()
    twin_maps = maps.detach().clone().requires_grad_()
    values, valid = sample_value_maps(maps, p, k, e)
    twin_values, twin_valid = sample_value_maps_reference(twin_maps, p, k, e)
    assert torch.equal(valid, twin_valid)
    assert torch.allclose(values, twin_values, rtol=0, atol=1e-10)
    weights = torch.randn(values.shape, generator=generator, dtype=torch.float64)
    (values * weights).sum().backward()
    (twin_values * weights).sum().backward()
    assert torch.allclose(maps.grad, twin_maps.grad, rtol=0, atol=1e-10)
