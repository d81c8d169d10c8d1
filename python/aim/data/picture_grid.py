"""Pictures a person can read: small images upscaled by whole pixels, laid out in a grid with
labelled rows and columns, and captions.

The model works on views of 16 to 32 pixels; shown as they are, they are smudges a few
millimetres wide. Every picture ``aim`` writes for people (dataset previews, training samples,
the demo's prediction figures, rollout videos) goes through here, so they share one look:
nearest-neighbour upscaling (each model pixel a visible square, nothing invented between them),
dark labels on white, and Pillow's bundled font (no system fonts needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

LABEL_SIZE = 15  # font size of row/column labels and captions, pixels
GAP = 4  # pixels between cells
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """(H f, W f, ...) ``image`` (H, W, ...) with every pixel repeated ``factor`` times per axis."""
    if factor < 1:
        raise ValueError(f"upscale: factor must be >= 1, got {factor}")
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def scale_to(size: int, pixels: int) -> int:
    """The smallest whole upscaling factor that shows ``pixels`` at ``size`` pixels or more."""
    return max(1, -(-size // pixels))


@lru_cache(maxsize=8)
def font(size: int = LABEL_SIZE):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def text_width(text: str, size: int = LABEL_SIZE) -> int:
    left, _, right, _ = font(size).getbbox(text)
    return int(right - left)


def caption(image: np.ndarray, text: str, size: int = LABEL_SIZE, ink=(255, 255, 255),
            background=(30, 30, 30)) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with a bar of ``text`` above it."""
    bar = text_block(image.shape[1], [text], size, ink, background)
    return np.concatenate([bar, image], axis=0)


def text_block(width: int, lines: Sequence[str], size: int = LABEL_SIZE, ink=INK,
               background=BACKGROUND) -> np.ndarray:
    """(h, ``width``, 3) uint8: ``lines`` of text, left-aligned, one under the other, each
    wrapped at word boundaries to fit ``width``."""
    from PIL import Image, ImageDraw

    lines = [wrapped for line in lines for wrapped in _wrap(line, width - size, size)]
    line_height = int(size * 1.4)
    picture = Image.new("RGB", (width, line_height * len(lines) + size // 2), background)
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(lines):
        draw.text((size // 2, size // 4 + i * line_height), line, fill=ink, font=font(size))
    return np.asarray(picture)


def labelled_grid(cells: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str],
                  column_labels: Sequence[str], title: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8: ``cells[r][c]`` (h, w, 3) uint8 in a grid, row labels on the left,
    column labels on top, an optional title above. Cells of one column share its widest
    width and cells of one row its tallest height (smaller ones are padded with white);
    :func:`grid_boxes` says where each cell's top-left corner lands."""
    from PIL import Image, ImageDraw

    width, height, boxes = grid_boxes(cells, row_labels, column_labels, title)
    picture = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((GAP, GAP // 2), title, fill=INK, font=font())
    first_row = boxes[0]
    for c, label in enumerate(column_labels):
        w = max(row[c].shape[1] for row in cells)
        top, left = first_row[c]
        draw.text((left + (w - text_width(label)) // 2, top - _line()), label, fill=INK, font=font())
    for label, row, row_boxes in zip(row_labels, cells, boxes):
        h = max(cell.shape[0] for cell in row)
        draw.text((GAP, row_boxes[0][0] + (h - LABEL_SIZE) // 2), label, fill=INK, font=font())
        for cell, (top, left) in zip(row, row_boxes):
            picture.paste(Image.fromarray(np.ascontiguousarray(cell)), (left, top))
    return np.asarray(picture)


def grid_boxes(cells: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], column_labels: Sequence[str],
               title: str | None = None) -> tuple[int, int, list[list[tuple[int, int]]]]:
    """(width, height, boxes) of :func:`labelled_grid`'s picture: ``boxes[r][c]`` is the (top,
    left) pixel of cell (r, c)."""
    if not cells or len(cells) != len(row_labels) or any(len(row) != len(column_labels) for row in cells):
        raise ValueError(f"labelled_grid: {len(row_labels)} row labels and {len(column_labels)} column labels for "
                         f"a grid of {[len(row) for row in cells]} cells per row")
    heights = [max(cell.shape[0] for cell in row) for row in cells]
    widths = [max(row[c].shape[1] for row in cells) for c in range(len(column_labels))]
    left = max(text_width(label) for label in row_labels) + 2 * GAP
    top = _line() + GAP + (_line() if title else 0)
    lefts = [left + sum(widths[:c]) + GAP * c for c in range(len(widths))]
    tops = [top + sum(heights[:r]) + GAP * r for r in range(len(heights))]
    width = max(left + sum(widths) + GAP * len(widths), text_width(title) + 2 * GAP if title else 0)
    height = top + sum(heights) + GAP * len(heights)
    return width, height, [[(t, l) for l in lefts] for t in tops]


def _wrap(text: str, width: int, size: int) -> list[str]:
    lines, current = [], ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and text_width(candidate, size) > width:
            lines.append(current)
            candidate = word
        current = candidate
    return [*lines, current]


def _line() -> int:
    return int(LABEL_SIZE * 1.4)


def stack(pictures: Sequence[np.ndarray], gap: int = 3 * GAP) -> np.ndarray:
    """Pictures (h_i, w_i, 3) uint8 one under the other, left-aligned on white."""
    width = max(p.shape[1] for p in pictures)
    rows = []
    for i, p in enumerate(pictures):
        rows.append(np.pad(p, ((0, gap if i < len(pictures) - 1 else 0), (0, width - p.shape[1]), (0, 0)),
                           constant_values=255))
    return np.concatenate(rows, axis=0)
