"""Model-level properties of the MoT: intent-causality, shapes, branch options, clear errors."""

import pytest
import torch

from aim.model import AIMConfig, AIMTransformer, StreamGroup, count_parameters, preset
from aim.model.clip import teacher_forcing_groups
from aim.ops import TokenKind

from .helpers import STRUCTURE, random_clip, tiny_model


def _clip_groups(model, noisy_video=None, noisy_value=None, noisy_actions=None):
    video, value, actions, text = random_clip(model)
    s = STRUCTURE
    g = torch.Generator().manual_seed(7)
    future = video[:, :, s.observation_frames:]
    drawn = [torch.randn(t.shape, generator=g) for t in (future, value, actions)]
    noisy_video, noisy_value, noisy_actions = (
        d if given is None else given for d, given in zip(drawn, (noisy_video, noisy_value, noisy_actions))
    )
    video_t = torch.rand(2, s.future_frames, generator=g) * 1000
    action_t = torch.rand(2, actions.shape[1], generator=g) * 1000
    groups = teacher_forcing_groups(s, video, torch.zeros(2, s.total_frames), actions, noisy_video, noisy_value,
                                    noisy_actions, video_t, action_t)
    return groups, text, (noisy_video, noisy_value, noisy_actions)


def _outputs(model, groups, text, kind):
    with torch.no_grad():
        outs = model(groups, text)
    return [o for g, o in zip(groups, outs) if g.kind == kind]


@pytest.mark.parametrize("value_own_weights", [False, True])
def test_future_video_never_reaches_actions(value_own_weights):
    """One layer: actions read value tokens, never noisy future video. (With more layers, X_c
    reaches Ah_c through M_c, which the spec's table lets see X_c; that every layer's action
    queries ignore X_c's keys is tested on the KV cache in test_sampler.py.)"""
    model = tiny_model(value_own_weights=value_own_weights, num_layers=1).eval()
    groups, text, (x, m, a) = _clip_groups(model)
    base = _outputs(model, groups, text, TokenKind.FUTURE_ACTION)
    changed_video, _, _ = _clip_groups(model, noisy_video=x + 3 * torch.randn_like(x), noisy_value=m, noisy_actions=a)
    after_video = _outputs(model, changed_video, text, TokenKind.FUTURE_ACTION)
    for before, after in zip(base, after_video):
        torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    changed_value, _, _ = _clip_groups(model, noisy_video=x, noisy_value=m + 3 * torch.randn_like(m), noisy_actions=a)
    after_value = _outputs(model, changed_value, text, TokenKind.FUTURE_ACTION)
    for before, after in zip(base, after_value):
        assert (after - before).abs().max() > 1e-3


def test_actions_see_video_ablation_lets_future_video_reach_actions():
    model = tiny_model(num_layers=1, attention_rule="actions_see_video").eval()
    groups, text, (x, m, a) = _clip_groups(model)
    changed, _, _ = _clip_groups(model, noisy_video=x + 3 * torch.randn_like(x), noisy_value=m, noisy_actions=a)
    before = _outputs(model, groups, text, TokenKind.FUTURE_ACTION)
    after = _outputs(model, changed, text, TokenKind.FUTURE_ACTION)
    assert all((b - c).abs().max() > 1e-3 for b, c in zip(before, after))


def test_model_without_value_stream():
    model = tiny_model(value_stream=False).eval()
    assert not any("value" in name for name, _ in model.named_parameters())
    video, _, actions, text = random_clip(model)
    s = STRUCTURE
    noisy = [torch.randn_like(t) for t in (video[:, :, s.observation_frames:], actions)]
    groups = teacher_forcing_groups(s, video, torch.zeros(2, s.total_frames), actions, noisy[0], None, noisy[1],
                                    torch.rand(2, s.future_frames) * 1000, torch.rand(2, actions.shape[1]) * 1000)
    assert not any(g.stream == "value" for g in groups)
    outputs = model(groups, text)
    assert all(o.shape == g.data.shape for g, o in zip(groups, outputs) if g.is_noisy)
    with_value, _, _ = _clip_groups(tiny_model())
    with pytest.raises(ValueError, match="no value stream"):
        model(with_value, text)


def test_meta_built_model_is_fully_initialised_by_init_weights():
    with torch.device("meta"):
        model = AIMTransformer(preset("tiny"))
    model = model.to_empty(device="cpu")
    for p in model.parameters():
        p.data.fill_(float("nan"))
    model.init_weights()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not model.value_token.any()


def test_future_actions_never_reach_video_or_value():
    model = tiny_model().eval()
    groups, text, (x, m, a) = _clip_groups(model)
    changed, _, _ = _clip_groups(model, noisy_video=x, noisy_value=m, noisy_actions=a + 3 * torch.randn_like(a))
    for kind in (TokenKind.VIDEO, TokenKind.VALUE):
        for before, after in zip(_outputs(model, groups, text, kind), _outputs(model, changed, text, kind)):
            torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


def test_text_reaches_video_and_value_only_through_their_streams():
    """Actions have no cross-attention: with every other stream's input fixed, text changes the
    video output; it reaches actions only through value/observation tokens (so it does change them)."""
    model = tiny_model().eval()
    groups, text, _ = _clip_groups(model)
    other_text = torch.randn_like(text)
    before = _outputs(model, groups, text, TokenKind.VIDEO)[0]
    assert (_outputs(model, groups, other_text, TokenKind.VIDEO)[0] - before).abs().max() > 1e-3
    assert all(layer.branches["action"].cross_attn is None for layer in model.blocks)


def test_outputs_have_the_groups_shapes_and_gradients_flow():
    model = tiny_model(value_own_weights=True)
    groups, text, _ = _clip_groups(model)
    outs = model(groups, text)
    for g, o in zip(groups, outs):
        assert (o is None) == (not g.is_noisy)
        if o is not None:
            assert o.shape == g.data.shape
    sum(o.square().mean() for o in outs if o is not None).backward()
    assert model.blocks[0].branches["action"].self_attn.to_q.weight.grad.abs().sum() > 0
    assert model.blocks[0].branches["value"].ffn.fc_in.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_forward_stays_close_to_float32(dtype):
    model = tiny_model().eval()
    groups, text, _ = _clip_groups(model)
    with torch.no_grad():
        reference = model(groups, text)
        half = model.to(dtype)(
            [StreamGroup(g.kind, g.data.to(dtype), g.timesteps, g.chunk, g.start, g.step) for g in groups], text.to(dtype)
        )
    for r, h in zip(reference, half):
        if r is not None:
            assert h.dtype == dtype
            torch.testing.assert_close(h.float(), r, rtol=0.1, atol=0.1)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny_model()
    groups, text, _ = _clip_groups(model)
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        model.gradient_checkpointing = checkpointing
        sum(o.sum() for o in model(groups, text) if o is not None).backward()
        grads.append(model.blocks[0].branches["video"].self_attn.to_k.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_parameter_counts_of_presets():
    counts = count_parameters(preset("wan22-5b"))
    assert 4.9e9 < counts["video"] < 5.1e9  # Wan2.2-TI2V-5B's transformer
    assert counts["total"] == counts["video"] + counts["value"] + counts["action"]
    tiny = count_parameters(preset("tiny"))
    assert tiny["total"] == sum(p.numel() for p in tiny_model().parameters())


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(dim=100, num_heads=3), "not divisible by num_heads"),
        (dict(dim=24, num_heads=4), "head_dim 6"),
        (dict(action_dim=0), "action_dim must be a positive int"),
        (dict(patch_size=(1, 2)), "patch_size"),
        (dict(freq_dim=33), "freq_dim must be even"),
        (dict(attention_rule="everything"), "unknown attention rule"),
        (dict(value_stream=False, value_own_weights=True), "value_own_weights=True needs value_stream"),
    ],
)
def test_bad_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        AIMConfig(**{**preset("tiny").__dict__, **changes})


def test_unknown_preset():
    with pytest.raises(KeyError, match="unknown AIM preset"):
        preset("huge")


def test_mismatched_inputs_are_refused():
    model = tiny_model()
    c = model.config
    text = torch.randn(2, 3, c.text_dim)
    video = StreamGroup(TokenKind.VIDEO, torch.randn(2, c.latent_channels, 2, 4, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="latents must be"):
        model([StreamGroup(TokenKind.VIDEO, torch.randn(2, 5, 2, 4, 4), torch.zeros(2, 2))], text)
    with pytest.raises(ValueError, match="timesteps must be"):
        model([StreamGroup(TokenKind.VIDEO, video.data, torch.zeros(2, 3))], text)
    with pytest.raises(ValueError, match="actions must be"):
        model([video, StreamGroup(TokenKind.FUTURE_ACTION, torch.randn(2, 4, c.action_channels + 1), torch.zeros(2, 4))], text)
    with pytest.raises(ValueError, match="text must be"):
        model([video], torch.randn(2, 3, c.text_dim + 1))
    with pytest.raises(ValueError, match="batch"):
        model([video], torch.randn(3, 3, c.text_dim))
    bad_grid = AIMTransformer(preset("tiny", patch_size=(1, 2, 2)))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        bad_grid([StreamGroup(TokenKind.VIDEO, torch.randn(2, c.latent_channels, 2, 5, 4), torch.zeros(2, 2))], text)
