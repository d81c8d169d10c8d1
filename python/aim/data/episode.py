"""``Episode``: one trajectory in memory, the unit the dataset writer takes and converters produce."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Episode:
    """One trajectory of T steps seen by cameras ``images.keys()``.

    images[camera]: (T, H, W, 3) uint8 RGB; value_maps[camera]: (T, H, W) float heat in [0, 1]
    (docs/method.md §4; optional, but every camera needs one when given); actions (T, A) and proprio (T, P)
    float; intrinsics[camera]: (3, 3) pixels; extrinsics[camera]: (T, 4, 4) world-to-camera,
    OpenCV axes (the conventions of ``aim.ops.value_maps``). ``task`` is the task id (e.g.
    "pick-place-v3"), ``instruction`` the language instruction the model reads, ``seed`` the
    simulator seed that produced it (None for recorded data) and ``source`` the recording it was
    converted from (e.g. "episode3.hdf5"; None for simulated data), so collection and conversion
    can resume;
    ``action_names`` names the action channels (what an action means), when known.
    ``paraphrases`` are other instructions of the same episode a text encoder may train on, and
    ``unseen_instructions`` ones kept for evaluation only (RoboTwin's "seen" and "unseen" lists).
    """

    task: str
    instruction: str
    images: dict[str, np.ndarray]
    actions: np.ndarray
    proprio: np.ndarray
    intrinsics: dict[str, np.ndarray]
    extrinsics: dict[str, np.ndarray]
    value_maps: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int | None = None
    source: str | None = None
    action_names: tuple[str, ...] | None = None
    paraphrases: tuple[str, ...] = ()
    unseen_instructions: tuple[str, ...] = ()

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field whose shape, type or length disagrees."""
        t = self.length
        if self.actions.ndim != 2 or self.proprio.ndim != 2 or self.proprio.shape[0] != t:
            raise ValueError(f"episode: actions (T, A) and proprio (T, P) must agree, got "
                             f"{self.actions.shape} and {self.proprio.shape}")
        if self.action_names is not None and len(self.action_names) != self.actions.shape[1]:
            raise ValueError(f"episode: {len(self.action_names)} action names {list(self.action_names)} for "
                             f"{self.actions.shape[1]} action channels")
        if t < 1 or not self.images:
            raise ValueError("episode: needs at least one step and one camera")
        if self.value_maps and set(self.value_maps) != set(self.images):
            raise ValueError(f"episode: value_maps cameras {sorted(self.value_maps)} differ from "
                             f"image cameras {sorted(self.images)}")
        for cam, frames in self.images.items():
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != t or frames.shape[3] != 3:
                raise ValueError(f"episode: images[{cam!r}] must be ({t}, H, W, 3) uint8, got "
                                 f"{frames.shape} {frames.dtype}")
            if cam in self.value_maps and self.value_maps[cam].shape != frames.shape[:3]:
                raise ValueError(f"episode: value_maps[{cam!r}] must be {frames.shape[:3]}, got "
                                 f"{self.value_maps[cam].shape}")
            if np.shape(self.intrinsics.get(cam)) != (3, 3):
                raise ValueError(f"episode: intrinsics[{cam!r}] must be (3, 3)")
            if np.shape(self.extrinsics.get(cam)) != (t, 4, 4):
                raise ValueError(f"episode: extrinsics[{cam!r}] must be ({t}, 4, 4), got "
                                 f"{np.shape(self.extrinsics.get(cam))}")
