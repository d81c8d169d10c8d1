"""A random tiny bundle and a cheap deterministic simulator for the evaluation tests.

Spawned workers import this module by name, so everything a worker unpickles lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from aim.errors import UsageError
from aim.eval.observation import Observation
from aim.model import AIMTransformer, preset
from aim.model.text_encoders import TaskEmbedding
from aim.model.video_tokenizers import PixelPatchTokenizer
from aim.runtime.bundle import ModelBundle
from aim.runtime.preprocessing import canvas_layout, clip_structure
from aim.sim.environment import Environment, StepResult

CAMERAS = ["head", "left_wrist", "right_wrist"]
TASKS = ["reach", "push"]


def tiny_bundle(image_size=(8, 8), frame_stride: int = 2, action_channels: int = 4, seed: int = 0,
                cameras: Sequence[str] = CAMERAS, action_mean=None, action_std=None, view_size=None,
                tasks: Sequence[str] = TASKS, **model_changes) -> ModelBundle:
    """Random weights; the canvas packs ``cameras`` (shrunk to ``view_size``) as training does; the
    per-task embedding knows ``tasks``."""
    torch.manual_seed(seed)
    tokenizer = PixelPatchTokenizer(spatial=2)
    model = AIMTransformer(preset("tiny", latent_channels=tokenizer.latent_channels, action_channels=action_channels,
                                  **model_changes)).eval()
    text = TaskEmbedding(tasks, model.config.text_dim)
    structure = clip_structure(tokenizer, frame_stride, observation_frames=1, num_chunks=2, frames_per_chunk=2)
    layout = canvas_layout(list(cameras), image_size, view_size)
    mean = None if action_mean is None else torch.as_tensor(action_mean, dtype=torch.float32)
    std = None if action_std is None else torch.as_tensor(action_std, dtype=torch.float32)
    # The config sections bundle_metadata records, so a test can save the bundle as training does.
    train_config = {"tokenizer": {"kind": "pixel", "spatial": 2}, "text": {"kind": "task", "tokens": text.tokens}}
    return ModelBundle(model, tokenizer, text, structure, layout, frame_stride, mean, std, tuple(image_size),
                       list(cameras), train_config)


def save_bundle(bundle: ModelBundle, directory) -> None:
    """A checkpoint directory aim.runtime.bundle.load_bundle reads (bundle.json, model.safetensors)."""
    import json

    from safetensors.torch import save_file

    from aim.runtime.bundle import (
        BUNDLE_FILE,
        WEIGHTS_FILE,
        bundle_metadata,
        trained_modules,
    )

    directory.mkdir(parents=True, exist_ok=True)
    weights = {f"{prefix}.{k}": v.contiguous() for prefix, module in trained_modules(bundle).items()
               for k, v in module.state_dict().items()}
    save_file(weights, str(directory / WEIGHTS_FILE))
    (directory / BUNDLE_FILE).write_text(json.dumps(bundle_metadata(bundle)))


class PointEnv(Environment):
    """A point moved by the first three action values (``STEP`` units each); its images are a
    colour wash that changes with the position, so what the policy sees follows what it did.
    Succeeds once the point has moved more than the seed's ``reach`` along x in either direction."""

    STEP = 0.1

    def __init__(self, cameras: Sequence[str], image_size: tuple[int, int]) -> None:
        self.cameras = tuple(cameras)
        self.height, self.width = image_size

    def reset(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        self.position = rng.uniform(-0.2, 0.2, 3)
        self.start = self.position.copy()
        self.reach = rng.uniform(0.2, 0.8)
        return self.position.copy()

    def step(self, action: np.ndarray) -> StepResult:
        self.position = self.position + self.STEP * np.asarray(action[:3])
        success = abs(self.position[0] - self.start[0]) > self.reach
        return StepResult(self.position.copy(), bool(success), False)

    def render(self) -> dict[str, np.ndarray]:
        return self.render_at(self.height, self.width)

    def render_at(self, height: int, width: int) -> dict[str, np.ndarray]:
        """The views at ``height`` x ``width`` (the intrinsics of that size: :meth:`intrinsics_at`)."""
        rows = np.linspace(0.0, 1.0, height)[:, None, None]
        cols = np.linspace(0.0, 1.0, width)[None, :, None]
        images = {}
        for i, camera in enumerate(self.cameras):
            phase = self.position[None, None, :] * 3.0 + i
            wash = 0.5 + 0.5 * np.sin(phase + 2.0 * rows + 3.0 * cols)
            images[camera] = np.rint(255 * wash).astype(np.uint8)
        return images

    def intrinsics(self) -> dict[str, np.ndarray]:
        return self.intrinsics_at(self.height, self.width)

    def intrinsics_at(self, height: int, width: int) -> dict[str, np.ndarray]:
        f = float(width)
        k = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
        return {c: k for c in self.cameras}

    def extrinsics(self) -> dict[str, np.ndarray]:
        e = np.eye(4)
        e[2, 3] = 2.0  # the camera sits 2 units behind the origin, looking along +z
        return {c: e for c in self.cameras}

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.position.copy(), np.array([1.0, 0.0, 0.0, 0.0])

    def contacts(self):
        return []


@dataclass(frozen=True)
class PointSuite:
    """The :class:`PointEnv` benchmark: task names are TASKS, instructions the names themselves."""

    fps: float = 10.0

    def make(self, task: str, cameras: Sequence[str], image_size: tuple[int, int]) -> PointEnv:
        return PointEnv(cameras, image_size)

    def check_task(self, task: str) -> None:
        if task not in TASKS:
            raise UsageError(f"PointSuite: unknown task {task!r}; known: {TASKS}")

    def instruction(self, task: str) -> str:
        return task

    def executable(self, action: np.ndarray) -> np.ndarray:
        return np.clip(action, -1.0, 1.0)

    def ee_targets(self, env: PointEnv, actions: np.ndarray) -> np.ndarray:
        return env.position + PointEnv.STEP * np.cumsum(np.clip(actions[:, :3], -1.0, 1.0), axis=0)

    def view(self, env: PointEnv, height: int, width: int) -> Observation:
        return Observation(env.render_at(height, width), env.intrinsics_at(height, width), env.extrinsics())

class DyingPointEnv(PointEnv):
    """A PointEnv whose process is killed (SIGKILL: no cleanup, no exception) when an episode of
    seed ``dies_at`` takes its first step: what the operating system's out-of-memory killer does."""

    def __init__(self, cameras: Sequence[str], image_size: tuple[int, int], dies_at: int) -> None:
        super().__init__(cameras, image_size)
        self.dies_at = dies_at

    def reset(self, seed: int) -> np.ndarray:
        self.seed = seed
        return super().reset(seed)

    def step(self, action: np.ndarray) -> StepResult:
        if self.seed == self.dies_at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().step(action)


@dataclass(frozen=True)
class DyingPointSuite(PointSuite):
    """PointSuite whose worker dies in the episode of seed ``dies_at``."""

    dies_at: int = 0

    def make(self, task: str, cameras: Sequence[str], image_size: tuple[int, int]) -> PointEnv:
        return DyingPointEnv(cameras, image_size, self.dies_at)
