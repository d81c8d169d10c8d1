"""Encode, append and decode episode videos with PyAV (which bundles FFmpeg).

PyAV is the writer's encoder and muxer and the always-available decoder (the ``pyav`` backend of
``aim.data.video_backends``, which also holds the optional torchcodec and DALI decoders).

Several episodes may share one mp4 (LeRobot v3.0): :func:`append_video` copies an episode's
encoded packets after a file's existing ones, shifted to start at ``offset`` seconds, without
re-encoding. Each episode is encoded on its own, so it starts with a key frame and a reader can
seek straight to it.

Codec choice (``VideoCodec``): the default is VP9 in mp4, yuv420p, because every decoder we
use reads it: LeRobot's reader (FFmpeg), PyAV, and NVIDIA DALI on both CPU and GPU (DALI's CPU
decoder rejects H.264; docs/data.md). ``VideoCodec.lossless()`` (H.264 in RGB,
crf 0) reproduces frames exactly, for tests and for users who want exact pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from aim.data.lerobot_format import DatasetFormatError


@dataclass(frozen=True)
class VideoCodec:
    """An FFmpeg encoder name, its pixel format and encoder options."""

    name: str = "libvpx-vp9"
    pix_fmt: str = "yuv420p"
    options: dict = field(default_factory=lambda: {"crf": "30", "b": "0", "row-mt": "1"})

    @staticmethod
    def lossless() -> VideoCodec:
        """H.264 on RGB planes at crf 0: decoded frames equal the input exactly."""
        return VideoCodec("libx264rgb", "rgb24", {"crf": "0", "preset": "ultrafast"})


def encode_video(path: Path, frames: np.ndarray, fps: int, codec: VideoCodec) -> None:
    """Write frames (T, H, W, 3) uint8 RGB to ``path``; frame t is stamped t / fps seconds.

    The file appears under its final name only once complete (written as ``*.part.mp4``, then
    renamed), so a crash leaves no truncated file under a name the dataset refers to.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream(codec.name, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = codec.pix_fmt
        stream.options = dict(codec.options)
        for t, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = t
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.replace(path)


def append_video(target: Path, episode: Path, offset: float) -> None:
    """Make ``target`` hold its own packets, then ``episode``'s shifted to start at ``offset`` seconds.

    ``episode`` must come from :func:`encode_video` with the codec and size ``target`` was made
    with. A missing ``target`` becomes ``episode`` itself (renamed). ``target`` is replaced by
    rename, so it is never seen half written; ``episode`` is removed.
    """
    import av

    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        episode.replace(target)
        return
    tmp = target.with_name(target.stem + ".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = None
        for source, shift_seconds in ((target, 0.0), (episode, offset)):
            with av.open(str(source)) as container:
                video = container.streams.video[0]
                stream = stream or out.add_stream_from_template(video)
                shift = round(shift_seconds / video.time_base)
                for packet in container.demux(video):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = stream
                    out.mux(packet)
    tmp.replace(target)
    episode.unlink()


def frame_count(path: Path) -> int:
    """Number of frames in ``path`` from its container header; ``DatasetFormatError`` naming the file
    when it is missing or unreadable (a truncated mp4 loses the index at its end)."""
    import av

    if not path.is_file():
        raise DatasetFormatError(f"{path}: video file is missing")
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(path, container)
            if stream.frames:
                return int(stream.frames)
            return round(float(stream.duration * stream.time_base * stream.average_rate))
    except (av.error.FFmpegError, OSError, TypeError) as err:
        raise DatasetFormatError(f"{path}: cannot read video header ({err})") from err


def decode_video(path: Path, timestamps: np.ndarray, fps: int) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 RGB of ``path`` at ``timestamps`` (seconds, ascending).

    Seeks to the key frame before the first timestamp and decodes forward; a frame matches a
    timestamp within half a frame period. A missing, corrupt or too-short file raises
    ``DatasetFormatError`` naming the file.
    """
    import av

    if not path.is_file():
        raise DatasetFormatError(f"{path}: video file is missing")
    wanted = [float(t) for t in timestamps]
    tolerance = 0.5 / fps
    found: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(path, container)
            if wanted and wanted[0] > tolerance:
                container.seek(int(wanted[0] / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if len(found) == len(wanted):
                    break
                time = float(frame.pts * stream.time_base)
                if time < wanted[len(found)] - tolerance:
                    continue
                if time > wanted[len(found)] + tolerance:
                    raise DatasetFormatError(
                        f"{path}: no frame at {wanted[len(found)]:.4f} s (next frame is at {time:.4f} s)"
                    )
                found.append(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, OSError) as err:
        raise DatasetFormatError(f"{path}: cannot decode video ({err})") from err
    if len(found) < len(wanted):
        raise DatasetFormatError(
            f"{path}: video ends before {wanted[len(found)]:.4f} s (truncated or shorter than its episode)"
        )
    return np.stack(found)


def _video_stream(path: Path, container):
    if not container.streams.video:
        raise DatasetFormatError(f"{path}: no video stream (truncated, or not a video)")
    return container.streams.video[0]
