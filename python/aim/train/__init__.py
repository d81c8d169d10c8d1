"""``aim.train``: Stage I training (docs/method.md §6) from one CPU process to many GPUs.

Built on ``aim.runtime`` (what a trained model is and how it travels: bundle, preprocessing,
checkpoints, run directories, process groups, logging), beside ``aim.eval`` and ``aim.rl``.
Map (one job per module):

* ``config``       — :class:`TrainConfig`, the Stage I schema; presets in ``presets/``
* ``fresh_bundle`` — a freshly initialised model bundle for a config and its dataset
* ``objective``    — the module a step calls: transformer + trained text encoder -> losses
* ``data_order``   — the resumable, process-count-independent order of clips and noise
* ``loader``       — the clip dataset and its DataLoader
* ``samples``      — predicted-vs-true images
* ``loop``         — :func:`train`
"""

from aim.errors import NonFiniteLossError
from aim.train.config import TrainConfig, load_config
from aim.train.loop import TrainResult, train

__all__ = ["NonFiniteLossError", "TrainConfig", "TrainResult", "load_config", "train"]
