"""Whole-image focal stacks for training FocusLiteNN on the thesis' image-level task.

The thesis scores a 1024 × 1024 image by the mean of its 235-px patch scores (Sec. 3.4.2) and
`finefocus fqa eval` does the same. `ImageStackSet` holds such stacks from *training* phantom seeds
(`phantom_image_stacks`, the evaluation protocol's own renderer, so training and evaluation
images differ only by seed): planes uint8 (S, Z, H, W, 3) per seed, their focal planes z (S, Z)
µm and each image's z* (S,) µm; the label of plane k of stack s is |z[s, k] − z*[s]| (Eq. 3.9).

`image_score` scores an image as `fqa score` does (235-px patches at stride 128 from the image's
corner, pooled from one response map over the image, averaged over the tissue patches), but
differentiably, so a batch of images can be trained on.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..phantom.seeds import check_training_seed
from .dataset import IMAGE_PX, phantom_digest, phantom_image_stacks
from .focuslitenn import PATCH
from .heatmap import GRID_STRIDE, patch_cells
from .tissue import tissue_patches


@dataclass(frozen=True)
class ImageStackSet:
    """S focal stacks of Z whole images: ``parts`` uint8 arrays (S_i, Z, H, W, 3) (one per seed,
    memory-mapped from the cache, so processes share the pages and nothing is copied), ``z``
    float32 (S, Z) µm and ``zstar`` float32 (S,) µm over all parts in order."""
    parts: tuple
    z: np.ndarray
    zstar: np.ndarray

    def __len__(self) -> int:
        return int(self.z.shape[0])

    @property
    def planes_per_stack(self) -> int:
        return int(self.z.shape[1])

    def image(self, s: int, k: int) -> np.ndarray:
        """Plane ``k`` of stack ``s``: uint8 (H, W, 3)."""
        for part in self.parts:
            if s < part.shape[0]:
                return np.asarray(part[s, k])
            s -= part.shape[0]
        raise IndexError("stack index out of range")

    def labels(self) -> np.ndarray:
        """|z − z*| (S, Z) in µm."""
        return np.abs(self.z - self.zstar[:, None]).astype(np.float32)

    @classmethod
    def concat(cls, sets: Sequence["ImageStackSet"]) -> "ImageStackSet":
        return cls(tuple(p for s in sets for p in s.parts), np.concatenate([s.z for s in sets]),
                   np.concatenate([s.zstar for s in sets]))


def render_image_stacks(folder: Path, seed: int, n_stacks: int, image: int = IMAGE_PX) -> None:
    """Render ``n_stacks`` image stacks of phantom ``seed`` (13 planes at z* ± 3 µm, with the
    scanner's sensor noise, as `fqa eval` renders its images) into ``folder``: planes.npy uint8
    (S, 13, image, image, 3), written stack by stack into a memory-mapped file (never all in RAM),
    z.npy (S, 13) µm and zstar.npy (S,) µm, the last written last."""
    check_training_seed(seed, "phantom training image stacks")   # engine.phantom.seeds
    planes, zs, zstars = None, [], []
    for i, (p, z, zstar) in enumerate(phantom_image_stacks(seed, n_stacks, rng_seed=int(seed) % 1_000_003 + 29,
                                                           image=image)):
        if planes is None:
            planes = np.lib.format.open_memmap(folder / "planes.npy", mode="w+", dtype=np.uint8,
                                               shape=(n_stacks,) + p.shape)
        planes[i] = p
        zs.append(z)
        zstars.append(zstar)
    planes.flush()
    del planes
    np.save(folder / "z.npy", np.stack(zs).astype(np.float32))
    np.save(folder / "zstar.npy", np.asarray(zstars, np.float32))


def cached_image_stacks(cache_dir: Path, seeds: Sequence[int], stacks_per_seed: int, *,
                        image: int = IMAGE_PX, log: Callable[[str], None] | None = None) -> ImageStackSet:
    """`render_image_stacks` one seed at a time, each cached in the folder
    ``<cache_dir>/images-<seed>-<stacks>x<image>-<phantom digest>`` (rendered into a temporary
    folder beside it, then renamed), so an interrupted rendering resumes with the next seed and
    several processes can fill one cache with different seeds. The planes are memory-mapped: a
    training set of many 1024-px stacks (40 MB each) need not fit in RAM, and processes share it."""
    for seed in seeds:
        check_training_seed(seed, "phantom training image stacks")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sets = []
    for seed in seeds:
        path = cache_dir / f"images-{seed}-{stacks_per_seed}x{image}-{phantom_digest()}"
        if not (path / "zstar.npy").exists():
            tmp = Path(tempfile.mkdtemp(prefix=path.name + ".part-", dir=cache_dir))
            try:
                render_image_stacks(tmp, seed, stacks_per_seed, image)
                os.replace(tmp, path)
                if log:
                    log(f"rendered {stacks_per_seed} image stacks of phantom seed {seed} -> {path}")
            except OSError:
                if not (path / "zstar.npy").exists():  # not another process finishing first
                    raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # a failed or interrupted render's files
        sets.append(ImageStackSet((np.load(path / "planes.npy", mmap_mode="r"),), np.load(path / "z.npy"),
                                  np.load(path / "zstar.npy")))
    return ImageStackSet.concat(sets)


def tissue_masks(images: ImageStackSet, patch: int = PATCH, stride: int = GRID_STRIDE) -> np.ndarray:
    """Tissue patches of every plane: bool (S, Z, rows, cols), as the heatmap masks glass; the
    grid of ``patch``-px patches at ``stride`` px from each image's top-left corner."""
    return np.stack([np.stack([tissue_patches(images.image(s, k), patch, stride)
                               for k in range(images.planes_per_stack)]) for s in range(len(images))])


def image_score(model, x, tissue):
    """Differentiable whole-image score of FocusLiteNN (thesis Sec. 3.4.2), the score `fqa score`
    gives: the mean of its patch scores (Eq. 3.5) over the tissue patches. ``x`` float (B, 3, H, W)
    in [0, 1], ``tissue`` bool (B, rows, cols) → (B,) (0 for an image without tissue, where `fqa
    score` gives NaN; training images are mostly tissue). The kernel runs once over each image; each
    patch pools its `patch_cells` of the response map, rows first, then columns."""
    import torch

    r = model.response_map(x)  # (B, N, H', W')
    rows, cols = patch_cells(tissue.shape[1]), patch_cells(tissue.shape[2])

    def pool(t, op):
        t = torch.stack([op(t[:, :, a:a + k], dim=2) for a, k in rows], 2)      # (B, N, R, W')
        return torch.stack([op(t[:, :, :, a:a + k], dim=3) for a, k in cols], 3)  # (B, N, R, C)

    mx = pool(r, torch.amax).permute(0, 2, 3, 1)
    mn = pool(r, torch.amin).permute(0, 2, 3, 1)
    s = model.combine(mx, mn)
    m = torch.as_tensor(tissue, dtype=s.dtype)
    return (s * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1.0)
