"""What the model intended, drawn on pictures for people: predicted value maps and end-effector targets.

A chunk's predicted value map lives on the model's canvas (``aim.data.canvas``: the views packed
small). On a view rendered for people (larger, from the same camera), each view's part of the
canvas heat is cut out and resized to the view (bilinear: one canvas pixel covers many view
pixels) and blended in with ``aim.data.preview.overlay`` (the look of label previews); the
predicted end-effector targets are projected with that view's own calibration and marked in
``TARGET_COLOUR``. :func:`model_input_picture` shows the canvas itself, as the model saw it.
"""

from __future__ import annotations

import numpy as np
import torch

from aim.data.canvas import CanvasLayout
from aim.data.preview import overlay
from aim.eval.observation import Observation, canvas_frames
from aim.ops.value_maps_reference import project_points_reference

TARGET_COLOUR = (0, 255, 0)
OUTLINE_COLOUR = (0, 0, 0)


def slot_heat(layout: CanvasLayout, heat: np.ndarray, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Each camera's part of the canvas ``heat`` (Hc, Wc): (H / factor, W / factor) per camera,
    for views of ``image_size`` (H, W) packed by ``layout``."""
    height, width = image_size
    return {slot.camera: heat[slot.top:slot.top + height // slot.factor, slot.left:slot.left + width // slot.factor]
            for slot in layout.slots}


def resize_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) ``heat`` (h, w) resized bilinearly (pixel centres aligned, as the canvas shrinks by area)."""
    tensor = torch.as_tensor(np.ascontiguousarray(heat), dtype=torch.float32)[None, None]
    return torch.nn.functional.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def project_to_view(points: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray,
                    size: tuple[int, int]) -> np.ndarray:
    """(K, 2) pixel coordinates (u, v) of the world ``points`` (P, 3) that lie in front of the
    camera and inside its ``size`` (H, W) image, in the points' order; K <= P."""
    k = torch.as_tensor(intrinsics, dtype=torch.float64)[None, None]
    e = torch.as_tensor(extrinsics, dtype=torch.float64)[None, None, None]
    p = torch.as_tensor(np.asarray(points), dtype=torch.float64)[None, None]
    u, v, _, in_front = project_points_reference(p, k, e)
    u, v, in_front = u[0, 0, :, 0], v[0, 0, :, 0], in_front[0, 0, :, 0]
    height, width = size
    valid = in_front & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    return torch.stack([u[valid], v[valid]], dim=-1).numpy()


def draw_targets(image: np.ndarray, pixels: np.ndarray, radius: int) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with the targets at ``pixels`` (K, 2) marked: the
    first (the target of the step shown) as a ring of ``radius`` pixels, the rest (where the
    chunk's later actions go) as dots, each outlined so it shows on any background."""
    from PIL import Image, ImageDraw

    if not len(pixels):
        return image.copy()
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    dot = max(1, radius // 3)
    for u, v in pixels[1:]:
        draw.ellipse((u - dot, v - dot, u + dot, v + dot), fill=TARGET_COLOUR, outline=OUTLINE_COLOUR)
    u, v = pixels[0]
    width = max(2, radius // 3)
    draw.ellipse((u - radius - 1, v - radius - 1, u + radius + 1, v + radius + 1), outline=OUTLINE_COLOUR,
                 width=width + 2)
    draw.ellipse((u - radius, v - radius, u + radius, v + radius), outline=TARGET_COLOUR, width=width)
    return np.asarray(picture)


def view_pictures(view: Observation, cameras: list[str], heat: dict[str, np.ndarray] | None,
                  targets: np.ndarray | None) -> list[np.ndarray]:
    """Each camera's image of ``view`` with its part of the value map (``slot_heat``) blended in
    and the world ``targets`` (P, 3; the first is the current step's) marked."""
    pictures = []
    for camera in cameras:
        image = view.images[camera]
        size = image.shape[:2]
        if heat is not None:
            image = overlay(image, resize_heat(heat[camera], size))
        if targets is not None:
            pixels = project_to_view(targets, view.intrinsics[camera], view.extrinsics[camera], size)
            image = draw_targets(image, pixels, radius=max(3, min(size) // 40))
        pictures.append(image)
    return pictures


def model_input_picture(layout: CanvasLayout, observation: Observation, image_size: tuple[int, int],
                        heat: np.ndarray | None = None) -> np.ndarray:
    """(Hc, Wc, 3) uint8: the canvas the model encodes for ``observation``, with the canvas
    ``heat`` (Hc, Wc) blended in."""
    canvas = canvas_frames(layout, [observation], image_size)[0]
    picture = np.rint(canvas.permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
    return picture if heat is None else overlay(picture, heat)
