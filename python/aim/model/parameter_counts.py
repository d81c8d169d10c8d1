"""Parameter counts of a model config, per stream and in total, without building the model in memory."""

from __future__ import annotations

import torch

from aim.model.config import AIMConfig
from aim.model.transformer import AIMTransformer


def count_parameters(config: AIMConfig) -> dict[str, int]:
    """Parameters of a model built from ``config``, per branch and in total, counted on the meta
    device (no memory is allocated, so the 5B preset counts in milliseconds)."""
    with torch.device("meta"):
        model = AIMTransformer(config)
    counts = {"total": 0}
    for name, p in model.named_parameters():
        counts["total"] += p.numel()
        stream = _stream_of_parameter(name)
        counts[stream] = counts.get(stream, 0) + p.numel()
    return counts


def _stream_of_parameter(name: str) -> str:
    for stream in ("action", "value"):
        if f".{stream}." in f".{name}" or name.startswith(f"{stream}_"):
            return stream
    return "video"
