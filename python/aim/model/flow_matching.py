"""Stage-I training objective: rectified flow on video, value maps and actions (docs/method.md §6).

x_sigma = (1 - sigma) x0 + sigma eps, the model predicts the velocity eps - x0. Noise levels are
drawn per latent frame: video and value share theirs (shift 5), actions draw their own (shift 1),
repeated over the frame's action steps. The model sees timesteps sigma * 1000 (Wan's units).

**[decision]** ``clean_intent_prob``: at inference the actions are denoised attending to the
chunk's *denoised* value map (timestep 0, docs/method.md §7), but with shift 5 training shows them a value
map that is clean in only ~2% of clips (sigma < 0.1), so the action stream learns to read value
tokens under heavy noise and meets clean ones only at inference. With this probability a clip's
future video and value enter clean (sigma 0) instead; such clips train the action stream only
(their video and value velocities are not in the loss: at sigma 0 the target eps - x0 is noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from aim.model.clip import ClipStructure, teacher_forcing_groups

Tensor = torch.Tensor
TIMESTEP_SCALE = 1000.0  # Wan's timestep units


@dataclass(frozen=True)
class FlowMatchingConfig:
    video_shift: float = 5.0  # docs/method.md §6 reference value (video and value)
    action_shift: float = 1.0  # docs/method.md §6 reference value
    history_noise_prob: float = 0.5  # docs/method.md §6: probability that a sample's clean history is noised
    history_sigma_range: tuple[float, float] = (0.5, 1.0)  # docs/method.md §6, as written there
    text_dropout: float = 0.1  # docs/method.md §6, for classifier-free guidance
    clean_intent_prob: float = 0.0  # [decision] see the module docstring; 0 is the paper's training
    value_weight: float = 1.0  # lambda_m, docs/method.md §6 [decision] default 1
    action_weight: float = 1.0  # lambda_a
    # "uniform", or "bell": w(sigma) proportional to exp(-2 (sigma - 1/2)^2), mean 1 over
    # sigma in [0, 1] (the bell-shaped weighting used to fine-tune Wan-style flow models).
    weighting: str = "uniform"

    def __post_init__(self) -> None:
        if self.weighting not in ("uniform", "bell"):
            raise ValueError(f"FlowMatchingConfig.weighting must be 'uniform' or 'bell', got {self.weighting!r}")
        lo, hi = self.history_sigma_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(
                f"FlowMatchingConfig.history_sigma_range must satisfy 0 <= lo <= hi <= 1, got {self.history_sigma_range}"
            )
        for name in ("history_noise_prob", "text_dropout", "clean_intent_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"FlowMatchingConfig.{name} must be in [0, 1], got {getattr(self, name)}")


def shift_sigma(sigma: Tensor, shift: float) -> Tensor:
    """The shifted schedule shift s / (1 + (shift - 1) s): shift > 1 spends more steps at high noise."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def add_noise(x0: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
    """x_sigma for sigma broadcast against x0 (sigma already shaped to broadcast), in x0's dtype."""
    return ((1 - sigma) * x0 + sigma * noise).to(x0.dtype)


def timestep_weight(sigma: Tensor, weighting: str) -> Tensor:
    if weighting == "uniform":
        return torch.ones_like(sigma)
    grid = torch.linspace(0, 1, 1001, dtype=sigma.dtype, device=sigma.device)
    return torch.exp(-2 * (sigma - 0.5) ** 2) / torch.exp(-2 * (grid - 0.5) ** 2).mean()


def _frames(t: Tensor) -> Tensor:
    """(B, F) per-frame values -> (B, 1, F, 1, 1) to broadcast over latents."""
    return t[:, None, :, None, None]


def training_loss(
    model,
    structure: ClipStructure,
    video: Tensor,
    value: Tensor | None,
    actions: Tensor,
    text: Tensor,
    config: FlowMatchingConfig = FlowMatchingConfig(),
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """The three velocity losses and their weighted sum ``loss`` for one batch of clips.

    video (B, C, F_total, H, W) clean latents (observation frames, then the chunks' frames);
    value (B, C, F_future, H, W); actions (B, F_future a, channels); text (B, L, text_dim).
    A model without a value stream (``model.config.value_stream`` False) takes ``value`` None and
    reports a zero value loss.
    """
    has_value = model.config.value_stream
    if has_value != (value is not None):
        raise ValueError(f"training_loss: the model {'has' if has_value else 'has no'} value stream, "
                         f"but value is {'None' if value is None else 'given'}")
    structure.check(video, value, actions)
    batch, device = video.shape[0], video.device
    a = structure.actions_per_frame
    draw = lambda *shape: torch.rand(shape, generator=generator).to(device)  # noqa: E731

    future = video[:, :, structure.observation_frames:]
    sigma_v = shift_sigma(draw(batch, structure.future_frames), config.video_shift)
    clean_intent = (draw(batch) < config.clean_intent_prob if config.clean_intent_prob > 0
                    else torch.zeros(batch, dtype=torch.bool, device=device))
    sigma_v = torch.where(clean_intent[:, None], torch.zeros_like(sigma_v), sigma_v)
    sigma_a = shift_sigma(draw(batch, structure.future_frames), config.action_shift).repeat_interleave(a, dim=1)
    noise_like = lambda t: torch.randn(t.shape, generator=generator).to(device, t.dtype)  # noqa: E731
    eps_v = noise_like(future)
    eps_m = noise_like(value) if has_value else None
    eps_a = noise_like(actions)
    noisy_video = add_noise(future, _frames(sigma_v), eps_v)
    noisy_value = add_noise(value, _frames(sigma_v), eps_m) if has_value else None
    noisy_actions = add_noise(actions, sigma_a[..., None], eps_a)

    # History augmentation: with probability p a sample's clean history gets one noise level.
    noised = draw(batch) < config.history_noise_prob
    lo, hi = config.history_sigma_range
    sigma_h = torch.where(noised, lo + (hi - lo) * draw(batch), torch.zeros(batch, device=device))
    sigma_h = sigma_h[:, None].expand(batch, structure.total_frames)
    history = add_noise(video, _frames(sigma_h), torch.randn(video.shape, generator=generator).to(device, video.dtype))

    keep_text = (draw(batch) >= config.text_dropout).to(text.dtype)
    text = text * keep_text[:, None, None]

    groups = teacher_forcing_groups(
        structure, history, sigma_h * TIMESTEP_SCALE, actions, noisy_video, noisy_value, noisy_actions,
        sigma_v * TIMESTEP_SCALE, sigma_a * TIMESTEP_SCALE,
    )
    outputs = model(groups, text)
    pred_video = torch.cat([o for g, o in zip(groups, outputs) if g.stream == "video" and o is not None], dim=2)
    pred_actions = torch.cat([o for g, o in zip(groups, outputs) if g.stream == "action" and o is not None], dim=1)

    # Clean-intent clips leave the video and value losses; the others carry their full weight.
    kept = (~clean_intent).float()
    w_v = timestep_weight(sigma_v, config.weighting) * (kept * batch / kept.sum().clamp_min(1))[:, None]
    w_a = timestep_weight(sigma_a, config.weighting)
    losses = {
        "video": _weighted_mse(pred_video, eps_v - future, _frames(w_v)),
        "value": (
            _weighted_mse(torch.cat([o for g, o in zip(groups, outputs) if g.stream == "value"], dim=2),
                          eps_m - value, _frames(w_v))
            if has_value else pred_video.new_zeros((), dtype=torch.float32)
        ),
        "action": _weighted_mse(pred_actions, eps_a - actions, w_a[..., None]),
    }
    losses["loss"] = losses["video"] + config.value_weight * losses["value"] + config.action_weight * losses["action"]
    return losses


def _weighted_mse(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    return (F.mse_loss(pred.float(), target.float(), reduction="none") * weight).mean()
