"""Focal-stack training and evaluation data for focus-quality models.

A `StackSet` holds S stacks of Z patches each (uint8 (S, Z, P, P, 3)) with their labels
|z − z*| in µm (Eq. 3.9), where z* is the focus at which that patch's content is sharpest.

Sources:
* `phantom_stacks`: the phantom's exact ground truth. 512-px blocks are drawn at random and
  patches taken on a 3×3 grid inside them where they are mostly tissue; each block's planes are
  at its mean z* + offsets (µm) on a jittered grid from −3 to +3 µm, so labels cover 0–3 µm
  continuously; a patch's z* is the plane at which the patch as a whole is sharpest
  (`PhantomSlide.best_focus_of_region`: the peak of its noise-free Laplacian energy), the thesis'
  "sharpest plane at that location" (not the mean of the per-pixel best-focus map: a section
  3–6 µm thick holds detail at several depths, z*(x, y) varies by ~0.9 µm (SD) within a patch,
  and its mean can sit ~0.65 µm from the patch's sharpest plane).
* `phantom_image_stacks`: the evaluation protocol of the thesis (`engine.fqa.evaluate`): focal
  stacks of whole 1024-px images with the image's own z*, yielded one stack at a time.
* `slide_stacks`: a user's multi-plane slide (any backend). z* per location is the plane of
  maximum Laplacian energy, refined by a parabola through its neighbours.

Seeds: the policy is `engine.phantom.seeds`; phantom seeds at or above ``TRAINING_SEED_BASE`` are
for training and evaluation commands refuse them, so no figure we report is measured on a training
seed; `cached_phantom_stacks` (training and validation data) refuses evaluation seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..phantom.seeds import TRAINING, check_training_seed
from ..slides.base import Slide
from .metrics import METRICS, to_gray
from .tissue import tissue_pixels

TRAINING_SEED_BASE = TRAINING.start   # the first training seed (engine.phantom.seeds)
#: Names how patch labels are defined; part of the cache digest, so a change re-renders.
LABEL_VERSION = "region-sharpest-v2"
PATCH = 235


@dataclass
class StackSet:
    images: np.ndarray   # uint8 (S, Z, P, P, 3)
    labels: np.ndarray   # float32 (S, Z), |z − z*| in µm
    z_um: np.ndarray     # float32 (S, Z), the plane z values

    def __len__(self) -> int:
        return self.images.shape[0]

    def planes_per_stack(self, s: np.ndarray) -> np.ndarray:
        return np.full(len(s), self.images.shape[1])

    def patches(self, s: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.images[s, z], self.labels[s, z]

    def iter_stacks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self.images[i], self.labels[i]

    def subset(self, keep: np.ndarray) -> "StackSet":
        """The stacks selected by a boolean or index array."""
        return StackSet(self.images[keep], self.labels[keep], self.z_um[keep])

    def save(self, path: Path) -> None:
        np.savez(path, images=self.images, labels=self.labels, z_um=self.z_um)

    @classmethod
    def load(cls, path: Path) -> "StackSet":
        with np.load(path) as f:
            return cls(f["images"], f["labels"], f["z_um"])

    @classmethod
    def concat(cls, sets: Sequence["StackSet"]) -> "StackSet":
        sets = [s for s in sets if len(s)]
        keys = ("images", "labels", "z_um")
        return cls(*(np.concatenate([getattr(s, k) for s in sets]) for k in keys))


def plane_offsets(rng: np.random.Generator, span_um: float = 3.0, step_um: float = 0.5) -> np.ndarray:
    """Plane offsets from z* in µm: a grid from −span to +span with ±step/2 jitter (not at 0)."""
    grid = np.arange(-span_um, span_um + 1e-6, step_um)
    jitter = rng.uniform(-step_um / 2, step_um / 2, len(grid))
    jitter[np.argmin(np.abs(grid))] = 0.0
    return (grid + jitter).astype(np.float32)


#: The phantom renders on a fixed grid of 512-px blocks; sampling patches inside one block reuses
#: its volume for every plane (one volume build per block, then one inverse FFT per plane).
_BLOCK = 512


def phantom_stacks(seeds: Sequence[int], stacks_per_seed: int, *, rng_seed: int = 0,
                   span_um: float = 3.0, step_um: float = 0.5, patch: int = PATCH,
                   size: tuple[int, int] = (40_000, 30_000), stain: str = "he",
                   min_tissue: float = 0.6, noise: bool = False, progress=None) -> StackSet:
    """Render ``stacks_per_seed`` focal stacks of ``patch``-px patches from each phantom seed
    (exact ground truth, noise-free: add sensor noise with `augment`).

    Blocks of 512 px are drawn at random; each contributes up to nine patches (a 3×3 grid of
    positions) that are at least ``min_tissue`` tissue. The block's planes are at its mean z* plus jittered
    offsets (µm); each patch's label is |z − z*| with z* the patch's own sharpest plane
    (`best_focus_of_region`).

    ``noise`` renders the planes as the phantom's scanner captures them (its Poisson–Gaussian
    sensor noise, a different noise field per plane) instead of noise-free."""
    from ..phantom import PhantomSlide

    rng = np.random.default_rng(rng_seed)
    imgs, labels, zs = [], [], []
    total, done = len(seeds) * stacks_per_seed, 0
    # Patch positions in a block: a 3×3 grid from corner to corner (neighbours overlap by
    # ~40%), so one block render yields up to nine patches.
    offs = np.linspace(0, _BLOCK - patch, 3).round().astype(int)
    corners = [(int(r), int(c)) for r in offs for c in offs]
    for seed in seeds:
        slide = PhantomSlide(seed=int(seed), size=size, stain=stain)
        W, H = slide.dimensions
        got, tries = 0, 0
        while got < stacks_per_seed:
            tries += 1
            if tries > 50 * stacks_per_seed:
                raise RuntimeError(f"phantom seed {seed}: too little tissue to sample {stacks_per_seed} stacks")
            bx = int(rng.integers(0, W // _BLOCK)) * _BLOCK
            by = int(rng.integers(0, H // _BLOCK)) * _BLOCK
            zmap = slide.best_focus_map(0, bx, by, _BLOCK, _BLOCK)
            # Planes on the renderer's 0.1 µm knot grid: each costs one exact render, no blend.
            z = np.round((float(zmap.mean()) + plane_offsets(rng, span_um, step_um)) * 10) / 10
            sharp = slide.truth(0, bx, by, _BLOCK, _BLOCK, float(zmap.mean()))
            tissue = tissue_pixels(sharp)
            picks = [(r, c) for r, c in corners
                     if tissue[r:r + patch, c:c + patch].mean() >= min_tissue][:stacks_per_seed - got]
            if not picks:
                continue
            planes = _render_planes(slide, bx, by, _BLOCK, z, noise)
            for r, c in picks:
                zstar = slide.best_focus_of_region(0, bx + c, by + r, patch, patch)
                imgs.append(np.stack([pl[r:r + patch, c:c + patch] for pl in planes]))
                labels.append(np.abs(z - zstar))
                zs.append(z)
                got += 1
                done += 1
            if progress:
                progress(done / total)
    return StackSet(np.stack(imgs), np.stack(labels).astype(np.float32), np.stack(zs).astype(np.float32))


def _render_planes(slide, x: int, y: int, side: int, z: np.ndarray, noise: bool) -> list[np.ndarray]:
    """The ``side``-px square at level-0 (x, y) focused at each z (µm): as the phantom's scanner
    captures it (sensor noise, one noise field per plane) or, without ``noise``, noise-free."""
    if noise:
        return [slide.renderer.render(0, x, y, side, side, float(zi), noise=True, plane_key=2000 + i)
                for i, zi in enumerate(z)]
    return [slide.truth(0, x, y, side, side, float(zi)) for zi in z]


#: The side (px) of an image in the thesis' evaluation protocol: FocusPath's 1024 × 1024 images.
IMAGE_PX = 1024


def phantom_image_stacks(seed: int, n_stacks: int, *, rng_seed: int = 0, image: int = IMAGE_PX,
                         span_um: float = 3.0, step_um: float = 0.5, size: tuple[int, int] = (40_000, 30_000),
                         stain: str = "he", min_tissue: float = 0.6,
                         noise: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """Yield ``n_stacks`` focal stacks of whole ``image``-px images of phantom ``seed``, as
    FocusPath holds them (thesis Sec. 2.1.2): (planes uint8 (Z, image, image, 3), z (Z,) µm, z* µm).

    Regions are drawn on the phantom's 512-px block grid and kept when at least ``min_tissue`` of
    their in-focus pixels are tissue (checked first on a cheap 8× coarser render). z* is the plane at
    which the whole image is sharpest (`PhantomSlide.best_focus_of_region`), the planes z* + offsets
    on a jittered grid from −``span_um`` to +``span_um`` (snapped to the renderer's 0.1 µm knots),
    imaged as the phantom's scanner captures them (its sensor noise) unless ``noise`` is False."""
    from ..phantom import PhantomSlide

    rng = np.random.default_rng(rng_seed)
    slide = PhantomSlide(seed=int(seed), size=size, stain=stain)
    W, H = slide.dimensions
    got, tries = 0, 0
    while got < n_stacks:
        tries += 1
        if tries > 200 * n_stacks:
            raise RuntimeError(f"phantom seed {seed}: too little tissue for {n_stacks} {image}-px images")
        bx = int(rng.integers(0, (W - image) // _BLOCK + 1)) * _BLOCK
        by = int(rng.integers(0, (H - image) // _BLOCK + 1)) * _BLOCK
        coarse = slide.truth(3, bx, by, image // 8, image // 8, 0.0)
        if tissue_pixels(coarse).mean() < min_tissue - 0.15:
            continue
        zstar = slide.best_focus_of_region(0, bx, by, image, image)
        if tissue_pixels(slide.truth(0, bx, by, image, image, zstar)).mean() < min_tissue:
            continue
        z = np.round((zstar + plane_offsets(rng, span_um, step_um)) * 10) / 10
        planes = _render_planes(slide, bx, by, image, z, noise)
        got += 1
        yield np.stack(planes), z.astype(np.float32), float(zstar)


def sharpest_z(stack_gray: np.ndarray, z_um: Sequence[float]) -> float:
    """z (µm) of maximum Laplacian energy over a (Z, H, W) grey stack, parabola-refined."""
    e = METRICS["energy_of_laplacian"]
    energy = np.array([e.score_grid(g, min(g.shape), min(g.shape))[0, 0] for g in stack_gray])
    k = int(np.argmax(energy))
    z = np.asarray(z_um, np.float64)
    if 0 < k < len(z) - 1:
        y0, y1, y2 = np.log(energy[k - 1:k + 2] + 1e-12)
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            t = float(np.clip(0.5 * (y0 - y2) / denom, -1, 1))
            step = (z[k + 1] - z[k - 1]) / 2
            return float(z[k] + t * step)
    return float(z[k])


def slide_stacks(slides: Sequence[Slide], stacks_per_slide: int, *, rng_seed: int = 0,
                 patch: int = PATCH, min_tissue: float = 0.6) -> StackSet:
    """Stacks from real multi-plane slides (every plane of each location), z* by Laplacian energy."""
    rng = np.random.default_rng(rng_seed)
    imgs, labels, zs = [], [], []
    for slide in slides:
        if slide.plane_count < 3:
            raise ValueError(f"{slide.path}: needs at least 3 focal planes to find z*, has {slide.plane_count}")
        W, H = slide.dimensions
        found, tries = 0, 0
        while found < stacks_per_slide and tries < 50 * stacks_per_slide:
            tries += 1
            x, y = int(rng.integers(0, max(1, W - patch))), int(rng.integers(0, max(1, H - patch)))
            stack = np.stack([slide.read_region(0, x, y, patch, patch, p) for p in range(slide.plane_count)])
            if tissue_pixels(stack[len(stack) // 2]).mean() < min_tissue:
                continue
            z = np.asarray(slide.planes_um, np.float32)
            zstar = sharpest_z(to_gray(stack), z)
            imgs.append(stack)
            labels.append(np.abs(z - zstar))
            zs.append(z)
            found += 1
    if not imgs:
        return StackSet(np.zeros((0, 1, patch, patch, 3), np.uint8), np.zeros((0, 1), np.float32),
                        np.zeros((0, 1), np.float32))
    return StackSet(np.stack(imgs), np.stack(labels).astype(np.float32), np.stack(zs).astype(np.float32))


def with_sensor_noise(stacks: StackSet, seed: int) -> StackSet:
    """The stacks as the phantom's scanner captures them: its Poisson–Gaussian sensor noise
    (`engine.phantom.sensor.SensorModel`) on every patch, a different, reproducible noise field per
    (stack, plane) from ``seed``. Validation uses this, so the weights kept are the best on scanned
    images (a scan always carries sensor noise) rather than on noise-free renders."""
    from ..phantom.sensor import SensorModel

    sensor = SensorModel()
    out = np.empty_like(stacks.images)
    S, Z = stacks.images.shape[:2]
    for s in range(S):
        for z in range(Z):
            out[s, z] = sensor.apply(stacks.images[s, z].astype(np.float32), int(seed), 0, z, 0, s * PATCH)
    return StackSet(out, stacks.labels, stacks.z_um)


def phantom_digest() -> str:
    """8 hex digits identifying the phantom's source code and the label definition
    (``LABEL_VERSION``): rendered stacks are only reused by the phantom that rendered them."""
    import hashlib

    h = hashlib.sha1()
    h.update(LABEL_VERSION.encode())
    for f in sorted((Path(__file__).resolve().parents[1] / "phantom").glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def cached_phantom_stacks(cache_dir: Path, seeds: Sequence[int], stacks_per_seed: int, *,
                          span_um: float = 3.0, step_um: float = 0.5, log=None,
                          digest: str | None = None) -> StackSet:
    """`phantom_stacks` one seed at a time, each seed's stacks cached in
    ``<cache_dir>/phantom-<seed>-<stacks>x<span>-<step>-<digest>.npz`` so an interrupted rendering
    resumes where it stopped (and several processes can fill one cache with different seeds).
    ``digest`` names the phantom and label version (default: `phantom_digest` of the code now);
    stacks rendered by another version are never reused."""
    for seed in seeds:
        check_training_seed(seed, "phantom training stacks")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    digest = digest or phantom_digest()
    sets = []
    for seed in seeds:
        stem = f"phantom-{seed}-{stacks_per_seed}x{span_um:g}-{step_um:g}"
        path = cache_dir / f"{stem}-{digest}.npz"
        if not path.exists():
            st = phantom_stacks([seed], stacks_per_seed, rng_seed=int(seed) % 1_000_003 + 11,
                                span_um=span_um, step_um=step_um)
            tmp = path.with_name(path.stem + ".part.npz")
            st.save(tmp)
            tmp.replace(path)
            if log:
                log(f"rendered {stacks_per_seed} stacks of phantom seed {seed} -> {path}")
        sets.append(StackSet.load(path))
    return StackSet.concat(sets)
