"""The softmax scale of the attention ops: its default and the one rule for a given value."""

from __future__ import annotations

import math
import numbers

from aim.errors import UsageError


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


def checked_scale(where: str, scale: float | None, head_dim: int) -> float:
    """``scale`` as a float (1/sqrt(head_dim) for None); a one-line error unless it is finite and > 0."""
    if scale is None:
        return default_scale(head_dim)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise UsageError(f"{where}: scale must be a real number, got {type(scale).__name__}")
    value = float(scale)
    if not (0.0 < value < math.inf):
        raise UsageError(f"{where}: scale must be finite and > 0, got {value} (None gives 1/sqrt(head_dim))")
    return value
