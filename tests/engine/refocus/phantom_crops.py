"""Small real training caches for the refocus tests: phantom crops rendered by the phantom
itself (``dataset.render_crop``) on a short z grid, written in the cache format."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.refocus.dataset import render_crop, tissue_positions, training_slide

#: A short grid (µm): enough for 1–3 input planes and targets on, between and beyond them.
SHORT_GRID_UM = np.array([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32)


def write_cache(folder: Path, seed: int, crops: int = 2, size: int = 64) -> Path:
    """``folder/<seed>.npz`` with ``crops`` tissue crops of ``size``² px of the training slide of
    ``seed`` (crops taken inside one 256-px tissue region to render one phantom block)."""
    slide = training_slide(seed)
    x, y = tissue_positions(slide, 1, np.random.default_rng(seed))[0]
    parts = [render_crop(slide, x + i * size, y, size, SHORT_GRID_UM) for i in range(crops)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{seed}.npz"
    np.savez(path, **{k: np.stack([p[k] for p in parts]) for k in ("grid", "zstar", "aif")}, z=parts[0]["z"])
    return path
