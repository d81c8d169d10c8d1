"""RoboTwin 2.0 episodes written here in RoboTwin's collected layout (``aim.data.robotwin``'s
docstring): OpenCV-style JPEG frames, a fixed head camera and wrist cameras that ride on the arms
(new extrinsics every step), ``joint_action``, ``endpose`` and instruction files, with a scripted
pick and place whose grasp and place points are known."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

CAMERAS = {"head_camera": "head", "left_camera": "left_wrist", "right_camera": "right_wrist"}
HEIGHT, WIDTH = 24, 32
# A downward-looking gripper: the pose's x axis (wrist to fingers) points along world -z.
DOWN = np.array([np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0])  # w, x, y, z: 90 degrees about +y


@dataclass
class ScriptedArm:
    """An arm that goes to ``grasp`` and closes at ``close_at``, then carries to ``place`` and opens
    at ``open_at`` (None: it keeps holding); before ``close_at`` - 4 it travels from ``start``."""

    start: np.ndarray
    grasp: np.ndarray | None = None
    place: np.ndarray | None = None
    close_at: int | None = None
    open_at: int | None = None

    def positions_and_gripper(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        positions, gripper = np.repeat(self.start[None], steps, axis=0).astype(np.float64), np.ones(steps)
        if self.grasp is None:
            return positions, gripper
        arrive = self.close_at - 2
        for t in range(steps):
            if t <= arrive:
                positions[t] = self.start + (self.grasp - self.start) * t / arrive
            elif self.open_at is None or t < self.open_at - 2:
                carry = min(1.0, max(0.0, (t - self.close_at - 1) / 3)) if self.place is not None else 0.0
                target = self.place if self.place is not None else self.grasp
                positions[t] = self.grasp + (target - self.grasp) * carry
            else:
                positions[t] = self.place
        # The command ramps over three steps, crossing the default thresholds at close_at / open_at.
        for t in range(steps):
            if t >= self.close_at - 1:
                gripper[t] = max(0.0, 0.6 - 0.4 * (t - self.close_at + 1))
            if self.open_at is not None and t >= self.open_at - 1:
                gripper[t] = min(1.0, 0.4 + 0.3 * (t - self.open_at + 1))
        return positions, gripper


@dataclass
class WrittenEpisode:
    """What :func:`write_episode` wrote: per-step joint vectors, ee poses, grippers, images and
    calibration by our camera names, and the instructions."""

    vector: np.ndarray
    endpose: dict[str, np.ndarray]
    gripper: dict[str, np.ndarray]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    intrinsics: dict[str, np.ndarray] = field(default_factory=dict)
    extrinsics: dict[str, np.ndarray] = field(default_factory=dict)
    instructions: dict | None = None


def jpeg_like_opencv(rgb: np.ndarray) -> bytes:
    """What ``cv2.imencode('.jpg', rgb)`` stores: the array read as BGR, i.e. channels swapped."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb[..., ::-1])).save(out, format="JPEG", quality=100)
    return out.getvalue()


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """(4, 4) world-to-camera, OpenCV axes (z forward, y down), for a camera at ``eye`` facing ``target``."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, -rotation @ eye
    return out


def intrinsics(focal: float = 40.0) -> np.ndarray:
    return np.array([[focal, 0.0, (WIDTH - 1) / 2], [0.0, focal, (HEIGHT - 1) / 2], [0.0, 0.0, 1.0]])


def write_episode(path: Path, rng: np.random.Generator, steps: int, left: ScriptedArm, right: ScriptedArm,
                  flip_quaternions: bool = False) -> WrittenEpisode:
    """One episode in RoboTwin's collected layout. The head camera looks down on the table from
    above; each wrist camera sits 0.25 m above its arm's end pose looking at the table below it.
    ``flip_quaternions`` stores every other step's quaternion negated (the same rotation)."""
    endpose, gripper, vectors = {}, {}, []
    for name, arm in (("left", left), ("right", right)):
        positions, command = arm.positions_and_gripper(steps)
        quaternions = np.repeat(DOWN[None], steps, axis=0)
        if flip_quaternions:
            quaternions[1::2] *= -1
        endpose[name], gripper[name] = np.concatenate([positions, quaternions], 1), command
        vectors.append(np.concatenate([rng.normal(size=(steps, 6)), command[:, None]], 1))
    written = WrittenEpisode(np.concatenate(vectors, 1), endpose, gripper)
    head = look_at(np.array([0.0, -0.05, 0.9]), np.zeros(3))
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    with h5py.File(path, "w") as f:
        for source, name in CAMERAS.items():
            if name == "head":
                world_to_camera = np.repeat(head[None], steps, axis=0)
            else:
                arm = endpose["left" if name == "left_wrist" else "right"]
                world_to_camera = np.stack([look_at(p[:3] + [0.0, -0.02, 0.25], p[:3] - [0.0, 0.0, 0.3]) for p in arm])
            images = np.stack([np.stack([x * 7 + t, y * 10, np.full_like(x, 200 - 5 * t)], -1)
                               for t in range(steps)]).astype(np.uint8)
            jpegs = [jpeg_like_opencv(im) for im in images]
            f.create_dataset(f"observation/{source}/rgb", data=jpegs, dtype=f"S{max(len(j) for j in jpegs)}")
            f.create_dataset(f"observation/{source}/intrinsic_cv", data=np.repeat(intrinsics()[None], steps, axis=0))
            f.create_dataset(f"observation/{source}/extrinsic_cv", data=world_to_camera[:, :3, :])
            f.create_dataset(f"observation/{source}/cam2world_gl", data=np.repeat(np.eye(4)[None], steps, axis=0))
            written.images[name], written.intrinsics[name], written.extrinsics[name] = images, intrinsics(), world_to_camera
        f.create_dataset("joint_action/vector", data=written.vector)
        for i, arm in enumerate(("left", "right")):
            f.create_dataset(f"joint_action/{arm}_arm", data=written.vector[:, 7 * i: 7 * i + 6])
            f.create_dataset(f"joint_action/{arm}_gripper", data=written.vector[:, 7 * i + 6])
            f.create_dataset(f"endpose/{arm}_endpose", data=endpose[arm])
            f.create_dataset(f"endpose/{arm}_gripper", data=gripper[arm])
    return written


SEEN = ["Pick up the red block and put it on the pad.", "Move the red block onto the pad.",
        "Place the red block on the pad."]
UNSEEN = ["Relocate the crimson cube to the mat.", "Could you set the red block down on the pad?"]


def pick_and_place_arms(rng: np.random.Generator) -> tuple[ScriptedArm, ScriptedArm]:
    """The left arm picks near the table's left and places on the right; the right arm idles."""
    grasp = np.array([-0.12, 0.02, 0.05]) + rng.uniform(-0.02, 0.02, 3)
    place = np.array([0.10, 0.05, 0.06]) + rng.uniform(-0.02, 0.02, 3)
    left = ScriptedArm(start=np.array([-0.25, -0.1, 0.3]), grasp=grasp, place=place, close_at=6, open_at=13)
    right = ScriptedArm(start=np.array([0.25, -0.1, 0.3]))
    return left, right


def write_task(root: Path, lengths=(18, 20), instructions: bool = True, arms=pick_and_place_arms,
               seed: int = 0) -> tuple[Path, list[WrittenEpisode]]:
    """``root/place_block/demo_clean`` with one episode per length (and instruction files)."""
    source = root / "place_block" / "demo_clean"
    (source / "data").mkdir(parents=True)
    (source / "instructions").mkdir()
    rng = np.random.default_rng(seed)
    written = []
    for i, steps in enumerate(lengths):
        left, right = arms(rng)
        episode = write_episode(source / "data" / f"episode{i}.hdf5", rng, steps, left, right)
        if instructions:
            episode.instructions = {"seen": SEEN[i % 2:], "unseen": UNSEEN}
            (source / "instructions" / f"episode{i}.json").write_text(json.dumps(episode.instructions))
        written.append(episode)
    return source, written


def project(point: np.ndarray, k: np.ndarray, world_to_camera: np.ndarray) -> tuple[float, float]:
    """(u, v) pixel of a world point (column, row)."""
    camera = world_to_camera[:3, :3] @ point + world_to_camera[:3, 3]
    u, v, w = k @ camera
    return u / w, v / w
