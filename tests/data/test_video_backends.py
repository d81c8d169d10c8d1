"""Video backends: every available one decodes the same frames, fails the same way, and the choice
follows the argument, then $AIM_VIDEO_BACKEND, then the automatic rule."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from aim.data import (
    DatasetFormatError,
    DatasetReader,
    DatasetWriter,
    available_backends,
    video_backend,
    video_backends,
)
from aim.data import lerobot_format as fmt
from aim.data.video_backends import DALIBackend, PyAVBackend
from tests.data.helpers import CAMERAS, synthetic_episode

FPS = 10
LENGTHS = (7, 9)
HEIGHT, WIDTH = 32, 48
AVAILABLE = available_backends()

# The same VP9 bitstream decodes to the same YUV 4:2:0 planes in every decoder (libvpx, FFmpeg's
# vp9, NVDEC); backends differ only in turning YUV into RGB. All use BT.601 limited range, but
# they round differently (measured on flat colours: PyAV's swscale lands up to 2 levels below
# DALI's exact rounding) and upsample chroma differently (bilinear or nearest), so a pixel may get
# its neighbouring chroma sample's value, which BT.601 scales by at most 1.772 * 255 / 224 (the
# blue coefficient). Hence: max difference <= 2 + 2.02 * the largest step between neighbouring
# chroma samples of the decoded video (``chroma_step``); and a mean of at most 2 levels, which
# holds on smooth pictures like these (measured: DALI 1.75, torchcodec 0).
ROUNDING_LEVELS, CHROMA_GAIN, MEAN_TOLERANCE = 2, 1.772 * 255 / 224, 2.0


def moving_waves(length: int, phase: int) -> np.ndarray:
    """(T, H, W, 3) uint8 smooth waves (at most about 6 levels per pixel) that move 4 px a frame,
    so neighbouring frames differ by about 10 levels on average."""
    t = np.arange(length)[:, None, None] + phase
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    channels = [128 + 45 * np.sin(2 * np.pi * (x + 4 * t) / 48), 128 + 45 * np.cos(2 * np.pi * (y - 3 * t) / 48),
                128 + 30 * np.sin(2 * np.pi * (x + y + 2 * t) / 48)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def chroma_step(path) -> int:
    """Largest difference between neighbouring chroma samples (U or V) in any frame of ``path``."""
    import av

    steps = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            planes = frame.to_ndarray(format="yuv420p").astype(int)[HEIGHT:].reshape(2, HEIGHT // 2, WIDTH // 2)
            steps += [np.abs(np.diff(planes, axis=1)).max(), np.abs(np.diff(planes, axis=2)).max()]
    return int(max(steps))


@pytest.fixture(scope="module")
def vp9_dataset(tmp_path_factory):
    """Two episodes sharing one VP9 mp4 per key (the writer's default codec and layout)."""
    root = tmp_path_factory.mktemp("backends") / "ds"
    rng = np.random.default_rng(3)
    episodes = []
    with DatasetWriter(root, FPS) as writer:
        for e, length in enumerate(LENGTHS):
            episode = synthetic_episode(rng, length, HEIGHT, WIDTH, value_maps=False)
            episode.images = {c: moving_waves(length, phase=10 * e + i) for i, c in enumerate(CAMERAS)}
            writer.add_episode(episode)
            episodes.append(episode)
    return root, episodes


def backend_or_skip(name: str):
    if AVAILABLE[name]:
        pytest.skip(f"{name} is not installed here: {AVAILABLE[name]}")
    return video_backend(name)


@pytest.mark.parametrize("name", ["torchcodec", "dali"])
def test_backends_decode_the_frames_pyav_decodes(vp9_dataset, name):
    root, episodes = vp9_dataset
    backend = backend_or_skip(name)
    reference, other = DatasetReader(root, video_backend=PyAVBackend()), DatasetReader(root, video_backend=backend)
    key = fmt.image_key("head")
    # The second episode starts mid-file; [2, 5, 8] needs a seek past the first frames.
    for episode, steps in ((0, np.arange(LENGTHS[0])), (1, np.array([2, 5, 8])), (1, np.arange(LENGTHS[1]))):
        expected = reference.frames(episode, key, steps).astype(int)
        got = other.frames(episode, key, steps).astype(int)
        assert got.shape == expected.shape
        difference = np.abs(got - expected)
        max_tolerance = ROUNDING_LEVELS + CHROMA_GAIN * chroma_step(reference.video_location(episode, key)[0])
        assert difference.mean() <= MEAN_TOLERANCE and difference.max() <= max_tolerance, (
            f"{backend.name}: mean {difference.mean():.2f}, max {difference.max()} (allowed {max_tolerance:.1f})")
        # Each decoded frame is the source frame it should be, not a neighbour.
        source = episodes[episode].images["head"].astype(int)
        distances = np.abs(got[:, None] - source[None]).mean(axis=(2, 3, 4))  # (decoded, source)
        np.testing.assert_array_equal(distances.argmin(axis=1), steps)


@pytest.mark.parametrize("name", ["pyav", "torchcodec", "dali"])
def test_backends_name_the_file_of_a_bad_video(vp9_dataset, tmp_path, name):
    root, _ = vp9_dataset
    backend = backend_or_skip(name)
    path, _ = DatasetReader(root).video_location(0, fmt.image_key("head"))
    total = sum(LENGTHS)
    with pytest.raises(DatasetFormatError, match="video ends before|no frame at|cannot decode") as err:
        backend.decode(path, np.array([total - 1, total + 2]) / FPS, FPS)
    assert str(path) in str(err.value)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for bad in (truncated, tmp_path / "missing.mp4"):
        with pytest.raises(DatasetFormatError) as err:
            backend.decode(bad, np.arange(3) / FPS, FPS)
        assert str(bad) in str(err.value)


@pytest.fixture
def fresh_choice():
    video_backends._resolve.cache_clear()
    yield
    video_backends._resolve.cache_clear()


def test_argument_beats_environment_beats_automatic(monkeypatch, caplog, fresh_choice):
    monkeypatch.setattr(video_backends, "_cuda_visible", lambda: False)
    monkeypatch.delenv(video_backends.ENV_VAR, raising=False)
    caplog.set_level(logging.INFO, logger="aim.data")
    automatic = "torchcodec" if AVAILABLE["torchcodec"] is None else "pyav"
    assert video_backend().name == automatic
    assert caplog.text.count(f"video backend {automatic} (automatic; DALI on the GPU: no CUDA device; ") == 1
    monkeypatch.setenv(video_backends.ENV_VAR, "no-such-decoder")
    with pytest.raises(ValueError, match=f"'no-such-decoder' \\(from {video_backends.ENV_VAR}\\) is not one of"):
        video_backend()
    monkeypatch.setenv(video_backends.ENV_VAR, "pyav")
    assert video_backend().name == "pyav"
    assert f"video backend pyav (chosen by {video_backends.ENV_VAR})" in caplog.text
    installed = next((n for n in ("torchcodec", "dali") if AVAILABLE[n] is None), None)
    if installed is None:
        pytest.skip("neither torchcodec nor DALI is installed; only PyAV can be chosen")
    assert video_backend(installed).name.startswith(installed)  # the argument beats the variable
    assert "(chosen by argument)" in caplog.text


@pytest.mark.parametrize("problems,chosen", [({}, "dali on gpu"), ({"nvidia.dali": "not installed"}, "torchcodec"),
                                             ({"nvidia.dali": "no", "torchcodec.decoders": "no"}, "pyav")])
def test_automatic_choice_order_on_a_gpu(monkeypatch, fresh_choice, problems, chosen):
    monkeypatch.delenv(video_backends.ENV_VAR, raising=False)
    monkeypatch.setattr(video_backends, "_cuda_visible", lambda: True)
    monkeypatch.setattr(video_backends, "DALIBackend", lambda device: SimpleNamespace(name=f"dali on {device}"))
    monkeypatch.setattr(video_backends, "TorchCodecBackend", lambda: SimpleNamespace(name="torchcodec"))
    monkeypatch.setattr(video_backends, "_import_problem", problems.get)
    assert video_backend().name == chosen


def test_dali_device_is_checked():
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        DALIBackend("tpu")
