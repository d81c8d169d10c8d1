"""Rollout videos: both formats hold every frame (and the held last one); the recorder's frames
are the views rendered for people, captioned, with the model's input beside them."""

import numpy as np
import pytest
from PIL import Image

from aim.data.video import frame_count
from aim.eval.episode import observe
from aim.eval.videos import HOLD_S, VIDEO_FPS, RolloutRecorder, write_video

from .helpers import PointEnv, PointSuite, tiny_bundle


def test_gif_and_mp4_hold_every_frame(tmp_path, rng):
    frames = rng.integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    gif = write_video(tmp_path / "a.gif", frames, fps=10, hold_s=0.5)
    assert Image.open(gif).n_frames == 5 and Image.open(gif).size == (24, 16)
    durations = []
    for i in range(5):
        image = Image.open(gif)
        image.seek(i)
        durations.append(image.info["duration"])
    assert durations == [100, 100, 100, 100, 600]
    assert frame_count(write_video(tmp_path / "a.mp4", frames, fps=10, hold_s=0.5)) == 10
    odd = write_video(tmp_path / "odd.mp4", frames[:, :15, :23], fps=10)  # 4:2:0 needs even sides: padded
    assert frame_count(odd) == 5
    with pytest.raises(ValueError, match=".gif"):
        write_video(tmp_path / "a.avi", frames, fps=10)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "b.gif", frames.astype(np.float32), fps=10)


def test_recorder_frames_show_the_views_for_people_and_the_model_input(tmp_path, rng):
    bundle = tiny_bundle(image_size=(8, 8))
    env, suite = PointEnv(bundle.cameras, bundle.image_size), PointSuite()
    env.reset(0)
    recorder = RolloutRecorder(bundle.layout, bundle.image_size, size=64, every=2, sim_fps=suite.fps)
    assert recorder.view_size == (64, 64) and recorder.wants(4, False) and not recorder.wants(3, False)
    assert recorder.wants(3, True)
    heat = rng.random((bundle.layout.height, bundle.layout.width))
    views = []
    for step in range(3):
        views.append(suite.view(env, *recorder.view_size))
        recorder.add(2 * step, views[-1], observe(env), heat if step else None, None)
        env.step(np.array([0.5, 0.0, 0.0, 0.0]))
    path = recorder.write(tmp_path / "r.gif", "reach", 7, success=True, steps=4)
    gif = Image.open(path)
    assert gif.n_frames == 3 and gif.info["duration"] == round(1000 / VIDEO_FPS)
    gif.seek(2)
    assert gif.info["duration"] == round(1000 / VIDEO_FPS) + round(1000 * HOLD_S)
    gif.seek(0)
    first = np.asarray(gif.convert("RGB")).astype(int)
    # The first frame has no heat: each view rendered for people appears as it is (up to the GIF's palette).
    image = views[0].images[bundle.layout.cameras[0]].astype(int)
    errors = [np.abs(first[t:t + 64, l:l + 64] - image).mean() for t in range(first.shape[0] - 63)
              for l in range(first.shape[1] - 63)]
    assert min(errors) < 8, min(errors)
    width, height = gif.size
    canvas_width = bundle.layout.width * (64 // bundle.layout.height)
    assert width >= 3 * 64 + canvas_width and height > 64
    with pytest.raises(ValueError, match="no frame"):
        RolloutRecorder(bundle.layout, bundle.image_size).write(tmp_path / "empty.gif", "reach", 7, False, 0)
