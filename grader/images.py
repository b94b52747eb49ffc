"""Pictures of image datasets: which input shapes are images, a grid of samples per class, PNG.

numpy and the standard library only. The PNG encoder is the format's minimum (8-bit greyscale or
RGB, one zlib stream, no filters): the web process needs nothing more, so Pillow stays out of its
requirements.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PER_CLASS = 8
MAX_CLASSES = 20
# Each sample is drawn at about this many pixels a side: small images are enlarged (nearest
# neighbour, so pixels stay crisp), large ones shrunk.
CELL_TARGET = 56
GAP = 4
BACKGROUND = 255


@dataclass(frozen=True)
class ImageLayout:
    """How one input row is laid out as a picture."""

    height: int
    width: int
    channels: int  # 1 (greyscale) or 3 (RGB)
    channels_first: bool


def image_layout(shape: Sequence[int]) -> ImageLayout | None:
    """The picture layout of inputs of ``shape`` (one row), or None if they are not images.

    Accepted: ``(H, W)``, ``(H, W, C)`` and ``(C, H, W)`` with C of 1, 3 or 4 (alpha dropped),
    H and W at least 2. Flat feature vectors and other shapes are not drawn.
    """
    dims = [int(d) for d in shape]
    if len(dims) == 2 and min(dims) >= 2:
        return ImageLayout(dims[0], dims[1], 1, channels_first=False)
    if len(dims) == 3:
        if dims[2] in (1, 3, 4) and min(dims[:2]) >= 2:
            return ImageLayout(dims[0], dims[1], min(dims[2], 3), channels_first=False)
        if dims[0] in (1, 3, 4) and min(dims[1:]) >= 2:
            return ImageLayout(dims[1], dims[2], min(dims[0], 3), channels_first=True)
    return None


def cell_size(layout: ImageLayout) -> tuple[int, int]:
    """The drawn (height, width) of one sample, keeping the aspect ratio."""
    side = max(layout.height, layout.width)
    scale = max(1, round(CELL_TARGET / side)) if side <= CELL_TARGET else CELL_TARGET / side
    return max(1, round(layout.height * scale)), max(1, round(layout.width * scale))


def grid_geometry(layout: ImageLayout, *, rows: int) -> tuple[int, int, int]:
    """(row pitch, width, height) of a grid of ``rows`` classes, in pixels."""
    cell_h, cell_w = cell_size(layout)
    pitch = cell_h + GAP
    return pitch, PER_CLASS * (cell_w + GAP) + GAP, rows * pitch + GAP


def pick_samples(
    labels: NDArray[np.generic], *, n_classes: int, per_class: int = PER_CLASS, seed: int = 0
) -> list[list[int]]:
    """Row indices of up to ``per_class`` samples of each class, the same on every call."""
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = np.asarray(labels)[order]
    return [order[shuffled == label][:per_class].tolist() for label in range(n_classes)]


def _as_pixels(samples: NDArray[np.generic], layout: ImageLayout) -> NDArray[np.uint8]:
    """(n, H, W, C) uint8 from the raw rows, stretched to use the whole range 0 to 255."""
    images = np.asarray(samples)
    if layout.channels_first:
        images = np.moveaxis(images, 1, -1)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    images = images[..., : layout.channels].astype(np.float64)
    if images.size:
        low, high = float(images.min()), float(images.max())
        images = (images - low) / (high - low) * 255 if high > low else np.zeros_like(images)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _resize(image: NDArray[np.uint8], height: int, width: int) -> NDArray[np.uint8]:
    rows = np.arange(height) * image.shape[0] // height
    cols = np.arange(width) * image.shape[1] // width
    return image[rows][:, cols]


def sample_grid(
    x: NDArray[np.generic], chosen: list[list[int]], layout: ImageLayout
) -> NDArray[np.uint8]:
    """A (height, width, channels) picture: one row per class, its samples left to right.

    ``chosen`` lists the rows of ``x`` to draw for each class (see ``pick_samples``); a class
    with fewer samples leaves its row partly blank.
    """
    cell_h, cell_w = cell_size(layout)
    pitch, width, height = grid_geometry(layout, rows=len(chosen))
    grid = np.full((height, width, layout.channels), BACKGROUND, dtype=np.uint8)
    flat = [index for indices in chosen for index in indices]
    pixels = _as_pixels(x[flat], layout) if flat else np.zeros((0, 1, 1, layout.channels))
    position = 0
    for row, indices in enumerate(chosen):
        for column in range(len(indices)):
            top, left = GAP + row * pitch, GAP + column * (cell_w + GAP)
            grid[top : top + cell_h, left : left + cell_w] = _resize(
                pixels[position], cell_h, cell_w
            )
            position += 1
    return grid


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png_bytes(pixels: NDArray[np.uint8]) -> bytes:
    """An 8-bit PNG of ``pixels``: (H, W) or (H, W, 1) greyscale, (H, W, 3) RGB."""
    image = np.ascontiguousarray(pixels, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        colour_type = 0
    elif image.ndim == 3 and image.shape[2] == 3:
        colour_type = 2
    else:
        raise ValueError(f"cannot encode an image of shape {image.shape}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("an image needs at least one pixel")
    # Each scanline starts with its filter type; 0 is "none".
    rows = image.reshape(height, -1)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
