"""Quality-control picture of a patient's crops: both phases with the ROI outlines.

Left the arterial, right the portal crop of the primary reader (z-scored values
shown from -2.5 to 2.5 SD), with every reader's outline drawn on both: reader 1
red, reader 2 green, reader 3 blue (then yellow, magenta, cyan).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from toolkit.artifacts import atomic_path

COLOURS = np.array(
    [[255, 40, 40], [40, 220, 40], [60, 120, 255], [255, 220, 0], [255, 0, 255], [0, 230, 230]],
    dtype=np.uint8,
)


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2-D mask (the mask minus its erosion)."""
    binary = np.asarray(mask) > 0
    return binary & ~ndimage.binary_erosion(binary)


def qc_image(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """RGB uint8 picture (rows, 2 * cols + 4, 3) of the primary reader's crops."""
    panels = []
    for phase in ("arterial", "portal"):
        grey = np.clip((arrays[phase][0] + 2.5) / 5.0, 0.0, 1.0)
        rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
        for index in range(arrays["mask"].shape[0] - 1, -1, -1):  # primary drawn last, on top
            rgb[outline(arrays["mask"][index])] = COLOURS[index % len(COLOURS)]
        panels.append(rgb)
    gap = np.zeros((panels[0].shape[0], 4, 3), np.uint8)
    return np.concatenate([panels[0], gap, panels[1]], axis=1)


def write_qc(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    """Write the QC picture as PNG, atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(qc_image(arrays)).save(buffer, format="PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(path)
