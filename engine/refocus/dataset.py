"""Phantom focal stacks for training and evaluating the refocus model.

A *crop* is one square region (``CROP`` px, level 0, 0.25 µm/px) of a phantom slide rendered
noise-free at every focus of ``Z_GRID_UM`` (−3 … +3 µm every 0.25 µm, absolute z of the
slide, no scanner error), with its best-focus map z* (µm) and its all-in-focus truth. Crops
are taken where there is tissue (found on a coarse level). ``build_cache`` writes them as
``.npz`` files (one per slide) so that training never renders; ``FocalStackSampler`` draws
training examples from them:

* input planes: 1–5 planes of the grid at a random spacing (0.25–1.5 µm) and position — or, in
  ``FOCUSED_PROB`` of the examples, with the middle plane at the crop's median z* as a scanner's
  autofocus places a single scanned plane (without these, a lone input plane is mostly out of
  focus in training, and the model learns to leave a sharp real scan unchanged) — with
  Poisson–Gaussian sensor noise added the way ``phantom.sensor.SensorModel`` does;
* the focus maps of the inputs: their nominal z (µm), which differs from where each plane was
  really focused by a scanner's focus error (N(0, ``FOCUS_ERROR_UM``) per plane);
* a target: a uniform z on a plane, between planes or up to 1.5 µm beyond them (2.5 µm for
  autofocus-placed stacks), a smooth random
  per-pixel map, or the best-focus map z* (all-in-focus). Per-pixel targets are rendered by
  interpolating the truth linearly between the two grid planes around each pixel's z (0.25 µm
  apart, well inside the ~1 µm depth of field).

Slides vary by seed, stain (H&E / IHC) and section thickness (3–6 µm).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..phantom.seeds import check_training_seed
from ..phantom.slide import PhantomSlide
from ..phantom.optics import Optics
from ..phantom.tissue_params import TissueParams, tissue_params

__all__ = ["Z_GRID_UM", "CROP", "SLIDE_SIZE", "training_slide", "tissue_positions", "render_crop",
           "build_cache", "load_cache", "FocalStackSampler", "add_sensor_noise", "smooth_map",
           "interpolate_truth", "slide_stack_crops", "PlaneHoldoutSampler"]

Z_GRID_UM = np.round(np.arange(-3.0, 3.0 + 1e-6, 0.25), 4)
CROP = 256
SLIDE_SIZE = (16384, 12288)
_THUMB_LEVEL = 5
_FULL_WELL_E = 12000.0
_READ_NOISE_DN = 0.9


def training_slide(seed: int, planes: int = 1, spacing_um: float = 1.0, noise: bool = False,
                   tissue_version: int = 1) -> PhantomSlide:
    """The phantom slide of ``seed`` with its stain and thickness drawn from the seed; for tissue
    version 2 also its objective: NA 0.75 (the evaluation phantom's) for half the seeds, else
    drawn from 0.5–0.95 (20× to 40× dry objectives)."""
    rng = np.random.default_rng([seed, 77])
    stain = "ihc" if rng.random() < 0.3 else "he"
    thickness = float(rng.uniform(3.0, 6.0))
    if tissue_version == 1:
        params = dataclasses.replace(TissueParams(), thickness_um=thickness)
        return PhantomSlide(seed=seed, size=SLIDE_SIZE, planes=planes, spacing_um=spacing_um, stain=stain,
                            scanner_error=False, noise=noise, params=params)
    params = dataclasses.replace(tissue_params(tissue_version), thickness_um=thickness)
    na = 0.75 if rng.random() < 0.5 else float(rng.uniform(0.5, 0.95))
    return PhantomSlide(seed=seed, size=SLIDE_SIZE, planes=planes, spacing_um=spacing_um, stain=stain,
                        scanner_error=False, noise=noise, params=params, optics=Optics(na=na))


def tissue_positions(slide: PhantomSlide, count: int, rng: np.random.Generator, size: int = CROP) -> list[tuple[int, int]]:
    """Up to ``count`` top-left corners (level-0 px) of ``size``² regions fully on tissue."""
    W, H = slide.dimensions
    ds = 2 ** _THUMB_LEVEL
    thumb = slide.truth(_THUMB_LEVEL, 0, 0, W // ds, H // ds, 0.0).astype(np.float32).mean(2)
    k = max(1, size // ds)
    tissue = thumb < 225.0
    rows, cols = tissue.shape[0] // k, tissue.shape[1] // k
    frac = tissue[:rows * k, :cols * k].reshape(rows, k, cols, k).mean((1, 3))
    cand = np.argwhere(frac > 0.9)
    rng.shuffle(cand)
    return [(int(c) * k * ds, int(r) * k * ds) for r, c in cand[:count]]


def render_crop(slide: PhantomSlide, x: int, y: int, size: int = CROP, z_grid=Z_GRID_UM) -> dict:
    """Noise-free truth of a region at every z of the grid, its z* map and all-in-focus image."""
    grid = np.stack([slide.truth(0, x, y, size, size, float(z)) for z in z_grid])
    return {"grid": grid, "z": np.asarray(z_grid, np.float32),
            "zstar": slide.best_focus_map(0, x, y, size, size).astype(np.float32),
            "aif": slide.all_in_focus(0, x, y, size, size)}


def build_cache(out_dir: Path, seeds, crops_per_slide: int = 16, log=print, tissue_version: int = 1) -> list[Path]:
    """Render ``crops_per_slide`` tissue crops of each training slide into ``out_dir/<seed>.npz``
    (skipping slides already there). Training-side seeds only (`engine.phantom.seeds`): an
    evaluation seed is refused before anything is rendered. Tissue version 2 slides are cached as
    ``v2-<seed>.npz``."""
    seeds = list(seeds)
    for seed in seeds:
        check_training_seed(seed, "refocus training crops")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = out_dir / (f"{seed}.npz" if tissue_version == 1 else f"v{tissue_version}-{seed}.npz")
        if not path.exists():
            slide = training_slide(seed, tissue_version=tissue_version)
            pos = tissue_positions(slide, crops_per_slide, np.random.default_rng([seed, 5]))
            crops = [render_crop(slide, x, y) for x, y in pos]
            if crops:
                tmp = path.with_suffix(".tmp.npz")
                np.savez(tmp, **{k: np.stack([c[k] for c in crops]) for k in ("grid", "zstar", "aif")},
                         z=crops[0]["z"])
                tmp.rename(path)
                log(f"cached {len(crops)} crops of slide {seed} ({slide.stain}) -> {path}")
        if path.exists():
            paths.append(path)
    return paths


def load_cache(paths) -> dict:
    """Concatenate cached crops: grid (K, Z, H, W, 3) uint8, z (Z,), zstar (K, H, W), aif (K, H, W, 3)."""
    parts = [np.load(p) for p in paths]
    if not parts:
        raise FileNotFoundError("no cached phantom crops")
    return {"grid": np.concatenate([p["grid"] for p in parts]), "z": parts[0]["z"],
            "zstar": np.concatenate([p["zstar"] for p in parts]),
            "aif": np.concatenate([p["aif"] for p in parts])}


# ---------------------------------------------------------------------- sampling helpers
def add_sensor_noise(img: torch.Tensor, gen: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
    """Poisson–Gaussian noise on intensities in [0, 1] (12 000 e⁻ full well, 0.9 grey-level read
    noise, ×``scale``), quantised to 8 bits, as the phantom's sensor."""
    dn = img * 255.0
    sigma = torch.sqrt(dn.clamp_min(0) * (255.0 / _FULL_WELL_E) + _READ_NOISE_DN ** 2) * scale
    noise = torch.randn(img.shape, generator=gen) * sigma
    return torch.clamp(torch.floor(dn + noise + 0.5), 0, 255) / 255.0


def smooth_map(h: int, w: int, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A smooth random focus map (µm, float32 (h, w)) spanning about [lo, hi]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = np.zeros((h, w), np.float32)
    for _ in range(3):
        kx, ky = rng.uniform(-1.5, 1.5, 2) * 2 * np.pi / max(h, w)
        f += np.cos(kx * xx + ky * yy + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    f -= f.min()
    f /= max(float(f.max()), 1e-6)
    return (lo + (hi - lo) * f).astype(np.float32)


def interpolate_truth(grid: np.ndarray, z_grid: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """The truth at a per-pixel focus (µm, (h, w)) from a grid (Z, h, w, 3): linear between the two
    grid planes around each pixel (clamped to the grid). Float32 in grey levels."""
    z = np.asarray(z_grid, np.float64)
    t = np.clip((focus - z[0]) / (z[1] - z[0]), 0, len(z) - 1 - 1e-6)
    k = np.floor(t).astype(np.int64)
    fr = (t - k).astype(np.float32)[..., None]
    ii, jj = np.indices(focus.shape)
    a = grid[k, ii, jj].astype(np.float32)
    b = grid[np.minimum(k + 1, len(z) - 1), ii, jj].astype(np.float32)
    return a * (1 - fr) + b * fr


#: Augmentation (``FocalStackSampler(augment=True)``): share of examples made grey, seen through a
#: 0.5 µm/px scanner, and JPEG-compressed (the inputs only; the truth stays uncompressed).
GREY_PROB = 0.1
HALF_PITCH_PROB = 0.2
JPEG_PROB = 0.3


def scanner_variation(planes: torch.Tensor, truth: torch.Tensor, rng: np.random.Generator):
    """The same stain, colour, brightness and pitch change applied to the input planes
    (N, 3, h, w) and the truth (3, h, w), all in [0, 1]:

    * stain strength: optical density × a per-channel gain (0.85–1.15) × an overall one (0.8–1.2);
    * illumination: × 0.92–1.05;
    * grey content (``GREY_PROB``): the luminance in all three channels (grey or 16-bit captures);
    * a 0.5 µm/px scanner (``HALF_PITCH_PROB``): 2×2 box average, then bicubic back to 0.25 µm/px
      (what the model sees of a 20× slide).
    Flips and noise are applied elsewhere; the optics are untouched."""
    gain = torch.tensor(rng.uniform(0.85, 1.15, 3) * rng.uniform(0.8, 1.2), dtype=torch.float32).view(3, 1, 1)
    light = float(rng.uniform(0.92, 1.05))

    def apply(x):
        od = -torch.log10(x.clamp_min(1e-3))
        return (torch.pow(10.0, -od * gain) * light).clamp(0, 1)

    planes, truth = apply(planes), apply(truth)
    if rng.random() < GREY_PROB:
        w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        planes = (planes * w).sum(-3, keepdim=True).expand_as(planes).contiguous()
        truth = (truth * w).sum(-3, keepdim=True).expand_as(truth).contiguous()
    if rng.random() < HALF_PITCH_PROB:
        def half(x):
            y = torch.nn.functional.avg_pool2d(x.reshape(-1, *x.shape[-3:]), 2)
            y = torch.nn.functional.interpolate(y, scale_factor=2, mode="bicubic", align_corners=False)
            return y.reshape(x.shape).clamp(0, 1)
        planes, truth = half(planes), half(truth)
    return planes, truth


def jpeg_roundtrip(planes: torch.Tensor, quality: int) -> torch.Tensor:
    """Each plane (N, 3, h, w) in [0, 1] JPEG-encoded at ``quality`` and decoded (8 bits)."""
    import io

    from PIL import Image
    out = []
    for p in planes:
        a = (p.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


class FocalStackSampler:
    """Random training examples from cached crops (see the module docstring)."""

    SPACINGS_UM = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
    TARGET_KINDS = ("on-plane", "between", "beyond", "map", "all-in-focus")
    TARGET_PROBS = (0.2, 0.25, 0.2, 0.2, 0.15)

    #: Share of training examples whose stack is placed the way a scanner's autofocus leaves it:
    #: its middle plane at the region's best focus (see `_planes`).
    FOCUSED_PROB = 0.35

    #: s.d. (µm) of a scanner's focus error: each input plane's true focus differs from the
    #: nominal z it is given with by this much (independently per plane).
    FOCUS_ERROR_UM = 0.1

    def __init__(self, cache: dict, crop: int = 128, max_planes: int = 5, seed: int = 0,
                 focused_prob: float | None = None, focus_error_um: float | None = None, augment: bool = False):
        self.augment = bool(augment)
        self.focused_prob = self.FOCUSED_PROB if focused_prob is None else float(focused_prob)
        self.focus_error_um = self.FOCUS_ERROR_UM if focus_error_um is None else float(focus_error_um)
        self.grid = cache["grid"]
        self.z = np.asarray(cache["z"], np.float64)
        self.zstar = cache["zstar"]
        self.aif = cache["aif"]
        self.crop = int(crop)
        self.max_planes = int(max_planes)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))

    def _planes(self, n: int, focus_um: float | None = None) -> np.ndarray:
        """Grid indices of ``n`` planes at a random spacing: anywhere on the grid, or — given
        ``focus_um`` — with the middle plane on the grid plane nearest it (a scanner's
        autofocus: one plane in focus, the rest around it)."""
        rng, z = self.rng, self.z
        step = z[1] - z[0]
        for _ in range(100):
            sp = rng.choice(self.SPACINGS_UM)
            k = int(round(sp / step))
            span = (n - 1) * k
            if span < len(z):
                if focus_um is None:
                    start = int(rng.integers(0, len(z) - span))
                else:
                    mid = int(np.argmin(np.abs(z - focus_um)))
                    start = int(np.clip(mid - k * ((n - 1) // 2), 0, len(z) - 1 - span))
                return start + k * np.arange(n)
        return np.arange(n)

    def example(self, n: int | None = None, kind: str | None = None):
        """One example: planes (N, 3, c, c) noisy in [0, 1], focus (N,) µm, target (c, c) µm,
        truth (3, c, c) in [0, 1], and the kind of target."""
        rng, c = self.rng, self.crop
        i = int(rng.integers(0, len(self.grid)))
        H, W = self.grid.shape[2:4]
        y0, x0 = int(rng.integers(0, H - c + 1)), int(rng.integers(0, W - c + 1))
        n = n or int(rng.integers(1, self.max_planes + 1))
        focused = self.focused_prob > 0 and rng.random() < self.focused_prob
        idx = self._planes(n, float(np.median(self.zstar[i, y0:y0 + c, x0:x0 + c])) if focused else None)
        zin = self.z[idx]
        kind = kind or rng.choice(self.TARGET_KINDS, p=self.TARGET_PROBS)
        if kind == "between" and n == 1:
            kind = "beyond"
        grid = self.grid[i, :, y0:y0 + c, x0:x0 + c]
        zlo, zhi = self.z[0], self.z[-1]
        if kind == "on-plane":
            t = np.full((c, c), zin[rng.integers(0, n)], np.float32)
        elif kind == "between":
            j = int(rng.integers(0, n - 1))
            t = np.full((c, c), rng.uniform(zin[j], zin[j + 1]), np.float32)
        elif kind == "beyond":
            side = rng.choice((-1.0, 1.0))
            edge = zin[-1] if side > 0 else zin[0]
            reach = 2.5 if focused else 1.5     # from a scanned in-focus plane, users turn ±2 µm
            t = np.full((c, c), np.clip(edge + side * rng.uniform(0.1, reach), zlo, zhi), np.float32)
        elif kind == "map":
            lo = max(zlo, zin[0] - rng.uniform(0, 1.0))
            hi = min(zhi, zin[-1] + rng.uniform(0, 1.0))
            t = smooth_map(c, c, rng, lo, hi)
        else:
            t = self.zstar[i, y0:y0 + c, x0:x0 + c].astype(np.float32)
        if kind == "all-in-focus":
            truth = self.aif[i, y0:y0 + c, x0:x0 + c].astype(np.float32)
        elif kind in ("on-plane", "between", "beyond") and np.isclose(self.z, t[0, 0]).any():
            truth = grid[int(np.argmin(np.abs(self.z - t[0, 0])))].astype(np.float32)
        else:
            truth = interpolate_truth(grid, self.z, t)
        planes = torch.from_numpy(grid[idx].astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        truth = torch.from_numpy(truth / 255.0).permute(2, 0, 1)
        t = torch.from_numpy(t)
        # random flips / transposes (the optics are laterally isotropic)
        if rng.random() < 0.5:
            planes, truth, t = planes.flip(-1), truth.flip(-1), t.flip(-1)
        if rng.random() < 0.5:
            planes, truth, t = planes.flip(-2), truth.flip(-2), t.flip(-2)
        if rng.random() < 0.5:
            planes, truth, t = planes.transpose(-1, -2), truth.transpose(-1, -2), t.transpose(-1, -2)
        if self.augment:
            planes, truth = scanner_variation(planes, truth, rng)
        planes = add_sensor_noise(planes, self.gen, scale=float(rng.uniform(0.5, 2.0) if self.augment
                                                                else rng.uniform(0.7, 1.5)))
        if self.augment and rng.random() < JPEG_PROB:
            planes = jpeg_roundtrip(planes, int(rng.integers(70, 96)))
        nominal = zin + rng.normal(0.0, self.focus_error_um, n) if self.focus_error_um > 0 else zin
        return planes.contiguous(), torch.tensor(nominal, dtype=torch.float32), t.contiguous(), truth.contiguous(), kind

    def batch(self, size: int, n: int | None = None):
        """A batch with one plane count: planes (B, N, 3, c, c), focus (B, N), target (B, c, c), truth (B, 3, c, c)."""
        n = n or int(self.rng.integers(1, self.max_planes + 1))
        ex = [self.example(n) for _ in range(size)]
        return (torch.stack([e[0] for e in ex]), torch.stack([e[1] for e in ex]),
                torch.stack([e[2] for e in ex]), torch.stack([e[3] for e in ex]), [e[4] for e in ex])


# ---------------------------------------------------------------------- the user's own stacks
def slide_stack_crops(slide, count: int, rng: np.random.Generator, size: int = CROP) -> dict:
    """Up to ``count`` tissue crops of every plane of a multi-plane slide (level 0):
    grid (K, Z, size, size, 3) uint8 and z (Z,) = the slide's ``planes_um``."""
    W, H = slide.dimensions
    if len(slide.planes_um) < 2:
        raise ValueError("a slide with at least 2 focal planes is needed to fine-tune refocusing")
    if W < size or H < size:
        raise ValueError(f"the slide is smaller than {size}x{size} px")
    order = np.argsort(slide.planes_um)
    mid = int(order[len(order) // 2])
    cand = []
    for _ in range(count * 4):       # candidates ranked by detail: keep the most textured (tissue)
        x, y = int(rng.integers(0, W - size + 1)), int(rng.integers(0, H - size + 1))
        g = slide.read_region(0, x, y, size, size, mid).astype(np.float32).mean(2)
        cand.append((float(g.std()) * float((g < 220).mean()), x, y))
    cand.sort(reverse=True)
    crops = [np.stack([slide.read_region(0, x, y, size, size, int(i)) for i in order])
             for score, x, y in cand[:count] if score > 0]
    if not crops:
        raise ValueError("no tissue found in the slide")
    return {"grid": np.stack(crops), "z": np.asarray(slide.planes_um, np.float32)[order]}


class PlaneHoldoutSampler:
    """Examples from real multi-plane crops: the target is a captured plane left out of the
    inputs (1 … min(5, Z − 1) other planes); the truth is that captured plane."""

    def __init__(self, crops: dict, crop: int = 128, max_planes: int = 5, seed: int = 0):
        self.grid, self.z = crops["grid"], np.asarray(crops["z"], np.float32)
        self.crop, self.max_planes = int(crop), int(max_planes)
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int, n: int | None = None):
        rng, c = self.rng, self.crop
        Z = len(self.z)
        n = min(n or int(rng.integers(1, self.max_planes + 1)), Z - 1)
        out = []
        for _ in range(size):
            i = int(rng.integers(0, len(self.grid)))
            H, W = self.grid.shape[2:4]
            y0, x0 = int(rng.integers(0, H - c + 1)), int(rng.integers(0, W - c + 1))
            t = int(rng.integers(0, Z))
            idx = np.sort(rng.choice([k for k in range(Z) if k != t], n, replace=False))
            g = self.grid[i, :, y0:y0 + c, x0:x0 + c].astype(np.float32) / 255.0
            planes = torch.from_numpy(g[idx]).permute(0, 3, 1, 2)
            truth = torch.from_numpy(g[t]).permute(2, 0, 1)
            out.append((planes, torch.from_numpy(self.z[idx]), torch.full((c, c), float(self.z[t])), truth))
        return (torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out]),
                torch.stack([o[2] for o in out]), torch.stack([o[3] for o in out]), ["on-plane"] * size)
