"""Rectified-flow objective: schedules, per-frame timesteps, augmentation, and that it trains."""

import pytest
import torch

from aim.model import preset
from aim.model.flow_matching import (
    FlowMatchingConfig,
    add_noise,
    shift_sigma,
    timestep_weight,
    training_loss,
)
from aim.ops import TokenKind

from .helpers import STRUCTURE, random_clip, tiny_model


def test_shifted_schedule():
    s = torch.linspace(0, 1, 11)
    torch.testing.assert_close(shift_sigma(s, 1.0), s)
    shifted = shift_sigma(s, 5.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert torch.all(shifted[1:-1] > s[1:-1]) and torch.all(shifted.diff() > 0)


def test_velocity_target_moves_noise_to_data():
    x0, eps = torch.randn(3, 4), torch.randn(3, 4)
    x_half = add_noise(x0, torch.tensor(0.5), eps)
    torch.testing.assert_close(x_half - 0.5 * (eps - x0), x0)


def test_bell_weighting_has_mean_one():
    w = timestep_weight(torch.linspace(0, 1, 1001), "bell")
    assert abs(float(w.mean()) - 1) < 1e-3 and w[500] > w[0]


class _Recorder(torch.nn.Module):
    """Stands in for the model: records its inputs and predicts zeros."""

    config = preset("tiny")

    def forward(self, groups, text):
        self.groups, self.text = groups, text
        return [torch.zeros_like(g.data) if g.is_noisy else None for g in groups]


def test_timesteps_are_per_frame_shared_by_video_and_value():
    model, recorder = tiny_model(), _Recorder()
    video, value, actions, text = random_clip(model)
    training_loss(recorder, STRUCTURE, video, value, actions, text, FlowMatchingConfig(history_noise_prob=0.0))
    by_kind = lambda k: [g for g in recorder.groups if g.kind == k]  # noqa: E731
    for x, m, a in zip(by_kind(TokenKind.VIDEO), by_kind(TokenKind.VALUE), by_kind(TokenKind.FUTURE_ACTION)):
        assert torch.equal(x.timesteps, m.timesteps)
        per_frame = a.timesteps.unflatten(1, (-1, STRUCTURE.actions_per_frame))
        assert torch.equal(per_frame, per_frame[..., :1].expand_as(per_frame))
        assert not torch.equal(per_frame[..., 0], x.timesteps)  # drawn independently
        assert x.timesteps.min() > 0 and x.timesteps.max() < 1000
    assert all(g.timesteps.abs().max() == 0 for g in by_kind(TokenKind.OBSERVATION))


def test_history_noise_and_text_dropout():
    model, recorder = tiny_model(), _Recorder()
    video, value, actions, text = random_clip(model)
    config = FlowMatchingConfig(history_noise_prob=1.0, history_sigma_range=(0.5, 1.0), text_dropout=1.0)
    training_loss(recorder, STRUCTURE, video, value, actions, text, config)
    observations = [g for g in recorder.groups if g.kind == TokenKind.OBSERVATION]
    for g in observations:
        assert g.timesteps.min() >= 500 and g.timesteps.max() <= 1000
    assert recorder.text.abs().max() == 0


def test_clean_intent_clips_show_clean_video_and_value_and_train_actions_only():
    model, recorder = tiny_model(), _Recorder()
    video, value, actions, text = random_clip(model, batch=6)
    future = video[:, :, STRUCTURE.observation_frames:]
    by_kind = lambda k: [g for g in recorder.groups if g.kind == k]  # noqa: E731
    always = FlowMatchingConfig(history_noise_prob=0.0, clean_intent_prob=1.0)
    losses = training_loss(recorder, STRUCTURE, video, value, actions, text, always)
    assert losses["video"] == 0 and losses["value"] == 0 and losses["action"] > 0
    for group in by_kind(TokenKind.VIDEO) + by_kind(TokenKind.VALUE):
        assert group.timesteps.abs().max() == 0
    torch.testing.assert_close(torch.cat([g.data for g in by_kind(TokenKind.VIDEO)], dim=2), future)
    torch.testing.assert_close(torch.cat([g.data for g in by_kind(TokenKind.VALUE)], dim=2), value)

    half = FlowMatchingConfig(history_noise_prob=0.0, clean_intent_prob=0.5)
    losses = training_loss(recorder, STRUCTURE, video, value, actions, text, half, torch.Generator().manual_seed(1))
    timesteps = torch.cat([g.timesteps for g in by_kind(TokenKind.VALUE)], dim=1)
    clean = timesteps.abs().amax(1) == 0
    assert 0 < int(clean.sum()) < 6 and bool((timesteps[~clean] > 0).all())
    assert losses["video"] > 0 and losses["value"] > 0
    with pytest.raises(ValueError, match="clean_intent_prob"):
        FlowMatchingConfig(clean_intent_prob=1.5)


def test_loss_weights_combine_the_three_losses():
    model, recorder = tiny_model(), _Recorder()
    clip = random_clip(model)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    base = training_loss(recorder, STRUCTURE, *clip, FlowMatchingConfig(), g())
    weighted = training_loss(recorder, STRUCTURE, *clip, FlowMatchingConfig(value_weight=2.0, action_weight=0.5), g())
    expected = base["video"] + 2.0 * base["value"] + 0.5 * base["action"]
    torch.testing.assert_close(weighted["loss"], expected)


def test_model_without_value_stream_trains_on_video_and_actions_only():
    model = tiny_model(value_stream=False)
    video, value, actions, text = random_clip(model)
    losses = training_loss(model, STRUCTURE, video, None, actions, text)
    assert losses["value"] == 0 and losses["video"] > 0 and losses["action"] > 0
    torch.testing.assert_close(losses["loss"], losses["video"] + losses["action"])
    losses["loss"].backward()
    with pytest.raises(ValueError, match="has no value stream"):
        training_loss(model, STRUCTURE, video, value, actions, text)
    with pytest.raises(ValueError, match="has value stream"):
        training_loss(tiny_model(), STRUCTURE, video, None, actions, text)


def test_bad_clip_shapes_and_configs_are_refused():
    model = tiny_model()
    video, value, actions, text = random_clip(model)
    with pytest.raises(ValueError, match="clip video must be"):
        training_loss(model, STRUCTURE, video[:, :, 1:], value, actions, text)
    with pytest.raises(ValueError, match="clip actions must be"):
        training_loss(model, STRUCTURE, video, value, actions[:, 1:], text)
    with pytest.raises(ValueError, match="weighting"):
        FlowMatchingConfig(weighting="sqrt")


def test_tiny_model_overfits_a_small_batch():
    """Same noise every step (a fixed objective): the loss must fall by at least 10x."""
    model = tiny_model(seed=0)
    clip = random_clip(model, batch=2, grid=(2, 2))
    config = FlowMatchingConfig(history_noise_prob=0.0, text_dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0)
    losses = []
    for _ in range(25):
        loss = training_loss(model, STRUCTURE, *clip, config, torch.Generator().manual_seed(0))["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
