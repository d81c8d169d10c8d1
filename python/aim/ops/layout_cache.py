"""What a backend derives from a layout (block lists, masks, biases) is built once per layout and
device and kept with the layout, next to its device copies, so it lives exactly as long as the
layout does."""

from __future__ import annotations

from typing import Callable, Hashable, TypeVar

from aim.ops.layout import AttentionLayout

T = TypeVar("T")


def cached_on(layout: AttentionLayout, key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` the first time ``key`` is asked of ``layout``; the same object afterwards."""
    store = layout._device_copies
    if key not in store:
        store[key] = build()
    return store[key]
