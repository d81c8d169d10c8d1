"""``aim.data``: the LeRobot v3.0 dataset layout (writer, reader), training clips and converters.

* :class:`DatasetWriter` writes :class:`Episode` s (views, value maps, actions, proprio, camera
  calibration, task and instruction) as a dataset LeRobot's tooling opens.
* :class:`DatasetReader` reads one back (ours or any LeRobot v3.0 dataset);
  :class:`ClipDataset` yields training clips with the views packed by a :class:`CanvasLayout`.
* ``aim.data.video_backends`` decodes with PyAV, torchcodec or NVIDIA DALI (automatic, or
  ``$AIM_VIDEO_BACKEND``).
* ``aim.data.robotwin`` converts RoboTwin 2.0's collected HDF5 episodes, with value maps from
  their grippers (``aim.data.gripper_events``); ``aim.data.value_map_labels`` draws interaction
  events as value maps for every labeller (``aim.sim`` labels simulated episodes from contacts).
"""

from aim.data.canvas import CanvasLayout, ViewSlot
from aim.data.clips import ClipDataset
from aim.data.episode import Episode
from aim.data.lerobot_format import DatasetFormatError
from aim.data.reader import DatasetReader
from aim.data.video import VideoCodec
from aim.data.video_backends import VideoBackend, available_backends, video_backend
from aim.data.writer import DatasetWriter

__all__ = ["CanvasLayout", "ClipDataset", "DatasetFormatError", "DatasetReader", "DatasetWriter", "Episode",
           "VideoBackend", "VideoCodec", "ViewSlot", "available_backends", "video_backend"]
