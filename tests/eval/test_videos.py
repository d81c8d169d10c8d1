"""Rollout videos in both formats hold every frame."""

import numpy as np
import pytest
from PIL import Image

from aim.data.video import frame_count
from aim.eval.videos import write_video


def test_gif_and_mp4_hold_every_frame(tmp_path, rng):
    frames = rng.integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    gif = write_video(tmp_path / "a.gif", frames, fps=10)
    assert Image.open(gif).n_frames == 5 and Image.open(gif).size == (24, 16)
    assert frame_count(write_video(tmp_path / "a.mp4", frames, fps=10)) == 5
    with pytest.raises(ValueError, match=".gif"):
        write_video(tmp_path / "a.avi", frames, fps=10)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "b.gif", frames.astype(np.float32), fps=10)
