"""Pack several camera views into the one canvas image the model encodes (docs/method.md §2).

A ``CanvasLayout`` is a canvas size plus one slot per camera: where the view's top-left corner
sits and the integer factor it is shrunk by (s x s area averaging). The default,
:meth:`CanvasLayout.head_and_wrists`, follows the paper (docs/method.md §2 decision): for views of
H x W pixels the canvas is (H + H/2) x W; the head view fills the top H x W at full size, and
the two wrist views, each shrunk by 2 to H/2 x W/2, sit side by side below it (left wrist
on the left, right wrist on the right)::

    +-----------------+
    |      head       |  H
    +--------+--------+
    |  left  |  right |  H/2
    +--------+--------+
         W/2      W/2

:meth:`CanvasLayout.view_boxes` gives the slots in the form ``aim.ops.sample_value_maps``
takes (``view_offsets``, ``view_scales``, ``view_sizes``), so points projected with each
view's own intrinsics land on the right canvas pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class ViewSlot:
    """Camera ``camera`` shrunk by ``factor`` with its top-left corner at canvas (top, left)."""

    camera: str
    top: int
    left: int
    factor: int = 1


@dataclass(frozen=True)
class CanvasLayout:
    """A canvas of ``height`` x ``width`` pixels holding ``slots``; pixels no view covers are 0."""

    height: int
    width: int
    slots: tuple[ViewSlot, ...]

    @staticmethod
    def head_and_wrists(view_height: int, view_width: int, head: str = "head", left: str = "left_wrist",
                        right: str = "right_wrist") -> CanvasLayout:
        """The paper's packing (see the module docstring); view sizes must be even."""
        if view_height % 2 or view_width % 2:
            raise ValueError(f"head_and_wrists: view size {view_height}x{view_width} must be even")
        h2, w2 = view_height // 2, view_width // 2
        return CanvasLayout(view_height + h2, view_width, (
            ViewSlot(head, 0, 0, 1), ViewSlot(left, view_height, 0, 2), ViewSlot(right, view_height, w2, 2)))

    @property
    def cameras(self) -> list[str]:
        return [slot.camera for slot in self.slots]

    def pack(self, views: dict[str, Tensor]) -> Tensor:
        """Canvas (..., C, height, width) from views[camera] (..., C, H, W), each shrunk and placed in its slot."""
        first = views[self.slots[0].camera]
        canvas = first.new_zeros(*first.shape[:-2], self.height, self.width)
        for slot in self.slots:
            if slot.camera not in views:
                raise KeyError(f"CanvasLayout.pack: no view for camera {slot.camera!r}; got {sorted(views)}")
            view = views[slot.camera]
            h, w = view.shape[-2:]
            if h % slot.factor or w % slot.factor:
                raise ValueError(f"CanvasLayout.pack: view {slot.camera!r} {h}x{w} is not divisible by {slot.factor}")
            hs, ws = h // slot.factor, w // slot.factor
            if slot.top + hs > self.height or slot.left + ws > self.width:
                raise ValueError(f"CanvasLayout.pack: view {slot.camera!r} ({hs}x{ws} after shrinking) "
                                 f"overflows the {self.height}x{self.width} canvas at ({slot.top}, {slot.left})")
            if slot.factor > 1:
                lead = view.shape[:-3]
                view = F.avg_pool2d(view.reshape(-1, *view.shape[-3:]), slot.factor).reshape(*lead, -1, hs, ws)
            canvas[..., slot.top:slot.top + hs, slot.left:slot.left + ws] = view
        return canvas

    def view_boxes(self, view_sizes: dict[str, tuple[int, int]]) -> dict[str, Tensor]:
        """``view_offsets``, ``view_scales``, ``view_sizes`` (V, 2), (u, v) order, for ``sample_value_maps``.

        view_sizes[camera] is the view's own (height, width), the image its intrinsics refer to.
        """
        offsets, scales, sizes = [], [], []
        for slot in self.slots:
            s = 1.0 / slot.factor
            offsets.append((slot.left + (s - 1) / 2, slot.top + (s - 1) / 2))
            scales.append((s, s))
            h, w = view_sizes[slot.camera]
            sizes.append((w, h))
        as_tensor = lambda rows: torch.tensor(rows, dtype=torch.float64)
        return {"view_offsets": as_tensor(offsets), "view_scales": as_tensor(scales), "view_sizes": as_tensor(sizes)}
