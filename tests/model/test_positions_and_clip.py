"""RoPE positions and the clip's group structure."""

import torch

from aim.model.clip import teacher_forcing_groups
from aim.model.rope import RotaryEmbedding, apply_rotary, grid_positions, time_positions
from aim.ops import AttentionLayout, TokenKind, TokenSequence

from .helpers import STRUCTURE, random_clip, tiny_model


def test_grid_positions_follow_wan_token_order():
    pos = grid_positions(2, 3, 4, start=5.0)
    assert pos.shape == (24, 3)
    assert pos[0].tolist() == [5, 0, 0] and pos[1].tolist() == [5, 0, 1] and pos[4].tolist() == [5, 1, 0]
    assert pos[12].tolist() == [6, 0, 0]


def test_rotary_scores_depend_only_on_relative_position():
    rope = RotaryEmbedding(head_dim=16)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(pq, pk):
        rq, rk = rope(torch.tensor([pq], dtype=torch.float64)), rope(torch.tensor([pk], dtype=torch.float64))
        return float((apply_rotary(q, rq) * apply_rotary(k, rk)).sum())

    assert abs(score([3, 1, 2], [1, 0, 0]) - score([7, 4, 5], [5, 3, 3])) < 1e-4
    assert abs(score([3, 1, 2], [1, 0, 0]) - score([3, 1, 2], [2, 0, 0])) > 1e-4


def test_action_tokens_rotate_time_band_only():
    rope = RotaryEmbedding(head_dim=24)  # bands: time 8, height 8, width 8 -> 4 + 4 + 4 pairs
    rotations = rope(time_positions(3, start=2.0, step=0.5))
    assert torch.equal(rotations[:, 4:], torch.ones_like(rotations[:, 4:]))
    expected_time = torch.tensor([2.0, 2.5, 3.0])
    torch.testing.assert_close(rotations[:, 0].angle(), expected_time)


def test_rotation_turns_each_pair_of_channels():
    """apply_rotary turns (x[2i], x[2i+1]) by the pair's angle, as the real 2x2 rotation would."""
    x = torch.randn(2, 5, 3, 12)
    angles = torch.rand(5, 6) * 6.0
    rotated = apply_rotary(x, torch.polar(torch.ones_like(angles), angles))
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    torch.testing.assert_close(rotated[..., 0::2], x1 * cos - x2 * sin)
    torch.testing.assert_close(rotated[..., 1::2], x1 * sin + x2 * cos)


def test_clip_groups_match_the_ops_teacher_forcing_clip():
    """The model's clip builds the same intent-causal layout as aim.ops' reference clip layout."""
    model = tiny_model()
    video, value, actions, text = random_clip(model, grid=(2, 2))
    s = STRUCTURE
    groups = teacher_forcing_groups(s, video, torch.zeros(2, s.total_frames), actions, video[:, :, 1:], value, actions,
                                    torch.zeros(2, s.future_frames), torch.zeros(2, actions.shape[1]))
    assert [g.kind for g in groups[:5]] == [TokenKind.OBSERVATION, TokenKind.VIDEO, TokenKind.VALUE,
                                            TokenKind.FUTURE_ACTION, TokenKind.OBSERVATION]
    assert s.observation_frames == 1 and s.frames_per_chunk == 2  # below: O_0 has 1 frame, O_1 has 2
    reference = TokenSequence.teacher_forcing_clip(
        num_chunks=2, observation_tokens=2 * 4, action_tokens=s.actions_per_chunk, video_tokens=2 * 4,
        value_tokens=2 * 4, future_action_tokens=s.actions_per_chunk,
    )
    ours = model._layout(groups).to_dense()
    # The reference gives O_0 as many tokens as O_1; drop its extra frame's rows and columns.
    keep = torch.ones(len(reference), dtype=torch.bool)
    keep[4:8] = False
    expected = AttentionLayout.from_tokens(reference).to_dense()[keep][:, keep]
    # The model's attention lists the tokens branch by branch (video and value, then actions).
    sizes = [model._num_tokens(g) for g in groups]
    starts = [sum(sizes[:i]) for i in range(len(groups))]
    ordered = sorted(range(len(groups)), key=lambda i: (groups[i].stream == "action", i))
    attention_order = torch.cat([torch.arange(starts[i], starts[i] + sizes[i]) for i in ordered])
    assert not torch.equal(attention_order, torch.arange(len(attention_order)))
    assert torch.equal(ours, expected[attention_order][:, attention_order])
