"""Rollout videos for people: the episode rendered anew for viewing, with the model's intent drawn on.

The model sees 16-pixel views once per chunk; a video made of those is a few coloured squares
flickering five times. :class:`RolloutRecorder` instead takes, every ``every`` steps, a render of
the simulator state made for people (``Suite.view``: the same cameras, ``size`` pixels high,
anti-aliased), draws on each view the value map the current chunk predicts for its next
observed frame and the end-effector targets its remaining actions command
(``aim.eval.overlay``), adds the canvas the model last observed, and captions every frame with
the task, seed, outcome and step. Only episodes that become videos pay for these renders.

Files are GIF (Pillow, opens anywhere) or MP4 (PyAV, through ``aim.data.video`` so datasets and
rollouts share one encoder setup), played at ``VIDEO_FPS`` with the last frame held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aim.data.canvas import CanvasLayout
from aim.data.picture_grid import labelled_grid, stack, text_block, upscale
from aim.eval.observation import Observation
from aim.eval.overlay import model_input_picture, slot_heat, view_pictures

VIDEO_FORMATS = ("gif", "mp4")
VIDEO_FPS = 10.0  # frames per second of playback
HOLD_S = 1.5  # seconds the last frame stays on screen longer (before a GIF loops)
MODEL_INPUT = "model input"


def write_video(path: str | Path, frames: np.ndarray, fps: float, hold_s: float = 0.0) -> Path:
    """Writes ``frames`` (T, H, W, 3) uint8 to ``path``, the last frame shown ``hold_s`` seconds
    longer; the suffix (.gif or .mp4) picks the format."""
    path = Path(path)
    kind = path.suffix.lstrip(".").lower()
    if kind not in VIDEO_FORMATS:
        raise ValueError(f"write_video: {path} must end in one of {['.' + f for f in VIDEO_FORMATS]}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_video: frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "gif":
        from PIL import Image

        # One palette for the whole video, no dithering: colours stay put from frame to frame (no
        # flicker), and unchanged pixels stay equal, which GIF's frame differences store for free.
        samples = frames[:: max(1, len(frames) // 8)]
        palette = Image.fromarray(np.concatenate(list(samples), axis=0)).quantize(255, Image.Quantize.MEDIANCUT)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        durations = [max(1, round(1000 / fps))] * len(images)
        durations[-1] += round(1000 * hold_s)
        images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    else:
        from aim.data.video import VideoCodec, encode_video

        frames = np.concatenate([frames, np.repeat(frames[-1:], round(hold_s * fps), axis=0)])

        # 4:2:0 chroma needs even sides: pad the last row and column with white where odd.
        height, width = frames.shape[1:3]
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), constant_values=255)
        encode_video(path, frames, max(1, round(fps)), VideoCodec())
    return path


@dataclass
class _Frame:
    step: int
    views: list[np.ndarray]
    model_input: np.ndarray


@dataclass
class RolloutRecorder:
    """Collects one episode's video frames (see the module docstring). ``layout`` and
    ``image_size`` are the model's canvas and view size; ``size``: pixels per view height of the
    renders for people; ``every``: steps between frames; ``sim_fps``: simulator steps per second."""

    layout: CanvasLayout
    image_size: tuple[int, int]
    size: int = 256
    every: int = 2
    sim_fps: float = 80.0
    frames: list[_Frame] = field(default_factory=list)

    @property
    def view_size(self) -> tuple[int, int]:
        """(height, width) of the renders for people: ``size`` high, the model's aspect ratio."""
        height, width = self.image_size
        return self.size, max(1, round(self.size * width / height))

    def wants(self, step: int, finished: bool) -> bool:
        """Whether the state after ``step`` executed actions (0: the start) becomes a frame."""
        return step % self.every == 0 or finished

    def add(self, step: int, view: Observation, model_view: Observation, heat: np.ndarray | None,
            targets: np.ndarray | None) -> None:
        """One frame: ``view`` (rendered at :attr:`view_size`) after ``step`` actions, the model's
        last observation ``model_view``, the chunk's canvas ``heat`` (Hc, Wc) for the frame it
        observes next (None: none predicted) and the world ``targets`` (P, 3) of the chunk's
        actions from the one just executed (the first one at the start) to its last."""
        cameras = self.layout.cameras
        heats = None if heat is None else slot_heat(self.layout, heat, self.image_size)
        views = view_pictures(view, cameras, heats, targets)
        canvas = model_input_picture(self.layout, model_view, self.image_size, heat)
        self.frames.append(_Frame(step, views, upscale(canvas, self.model_input_factor)))

    @property
    def model_input_factor(self) -> int:
        """Whole-pixel upscaling of the model's canvas in the video: as tall as a view, or less."""
        return max(1, self.size // self.layout.height)

    def write(self, path: str | Path, task: str, seed: int, success: bool, steps: int) -> Path:
        """The video of the recorded frames, captioned with the episode's outcome."""
        if not self.frames:
            raise ValueError(f"RolloutRecorder: no frame recorded for {path}")
        outcome = f"success at step {steps}" if success else f"failure (stopped after {steps} steps)"
        columns = [*self.layout.cameras, f"{MODEL_INPUT} ({self.layout.width}x{self.layout.height})"]
        grids = [labelled_grid([[*frame.views, frame.model_input]], [""], columns,
                               f"{task} · seed {seed} · {outcome} · step {frame.step}") for frame in self.frames]
        speed = VIDEO_FPS * self.every / self.sim_fps
        legend = text_block(grids[0].shape[1], [
            "magenta: the value map the chunk predicts for its next observed frame · green ring: the end-effector "
            "target commanded at this step, dots: the chunk's later ones",
            f"views rendered for viewing ({self.view_size[0]} px), a frame every {self.every} steps, played at "
            f"{speed:.2g}x real time · model input: the canvas it last observed, shown {self.model_input_factor}x"])
        return write_video(path, np.stack([stack([grid, legend], gap=0) for grid in grids]), VIDEO_FPS, HOLD_S)
