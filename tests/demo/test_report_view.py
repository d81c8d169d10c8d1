"""The demo report as a person sees it: a moved copy of its folder opened in headless Chromium
shows every picture (each decoded, natural width > 0; a screenshot is saved beside the copy),
and every figure and rollout video is large enough to read."""

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from aim.eval.runner import EvalSettings
from aim.train.samples import FIGURE_VIEW_PIXELS

from .browser import CHROMEDRIVER, CHROMIUM, Browser, find
from .toy import OUT, TOY

VIEW_PIXELS = EvalSettings(tasks=TOY.tasks, episodes=1).video_size  # rollout videos: pixels per view height
CAMERAS = 3  # the demo's Meta-World views
PREDICTION_ROWS = 4  # true/imagined frames and value maps (the aim variant has a value stream)


@contextmanager
def _moved(base: Path, tmp_path: Path):
    """A copy of the report folder elsewhere, the original out of reach while it is used: a path
    that still pointed at the original (absolute, or relative to the working directory) breaks."""
    copy = tmp_path / "elsewhere" / "report-copy"
    shutil.copytree(base / OUT, copy)
    hidden = base / (OUT + "-hidden")
    (base / OUT).rename(hidden)
    try:
        yield copy
    finally:
        hidden.rename(base / OUT)


def test_a_moved_copy_of_the_report_shows_every_picture_in_chromium(toy_demo, tmp_path):
    if not (find(CHROMIUM) and find(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (.ci/run does)")
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    base, _ = toy_demo
    with _moved(base, tmp_path) as copy, Browser() as browser:
        browser.open((copy / "report.html").as_uri())
        images = browser.run("return [...document.images].map(i => [i.getAttribute('src'), i.complete, "
                             "i.naturalWidth, i.naturalHeight]);")
        screenshot = browser.screenshot(copy / "report.png")
    assert len(images) >= 1 + len(TOY.variants) + 1 + len(TOY.evaluated)  # losses, predictions, RL, rollouts
    broken = [source for source, complete, width, _ in images if not (complete and width > 0)]
    assert not broken, f"images that did not decode: {broken}"
    assert any(source.endswith(".gif") for source, *_ in images)
    shot = Image.open(screenshot)
    assert shot.width >= 1000 and shot.height > 2000


def test_every_figure_and_video_is_large_enough_to_read(toy_demo):
    base, result = toy_demo
    out = base / OUT
    sources = re.findall(r"src='([^']+)'", (base / result.report).read_text())
    videos = [s for s in sources if s.endswith((".gif", ".mp4"))]
    assert len(videos) == len(TOY.evaluated) * len(TOY.tasks)
    for source in videos:
        video = Image.open(out / source)
        width, height = video.size
        assert height >= VIEW_PIXELS and width >= CAMERAS * VIEW_PIXELS, (source, video.size)
        # A frame at the start, every 2 steps and at the end of an episode of up to eval_max_steps.
        assert video.n_frames >= 2, source
    for source in (s for s in sources if "predictions-" in s):
        width, height = Image.open(out / source).size
        # At least one column of the canvas (16 x 24 pixels) FIGURE_VIEW_PIXELS wide, in each row.
        rows = PREDICTION_ROWS if "no-value-map" not in source else 2
        assert width >= FIGURE_VIEW_PIXELS and height >= rows * 1.5 * FIGURE_VIEW_PIXELS, (source, width, height)
    for source in (s for s in sources if s.endswith(("losses.png", "rl.png"))):
        assert Image.open(out / source).width >= 1000, source
