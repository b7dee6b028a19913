"""Focal stacks made of real tissue: in-focus real images imaged as thin layers through
the phantom's optics.

The phantom gives exact 3-D truth but only its own textures; real scans give real textures but
no focal stacks. Here each crop of a real in-focus image (``REAL_TEXTURES``: the structural
references of `phantom.realism_references`, 20× scans at ≈ 0.5 µm/px — never the focal stacks
of ../shared/data/stacks, which are evaluation only) becomes a thin absorbing layer at a depth
z₀(x, y) (a random plane, tilted by up to ``MAX_TILT_UM`` over the crop), and its image at every
focus of a grid (``Z_GRID_UM``: −3 … +3 µm every 0.25 µm) is rendered through the optics:

    OD(z) = F⁻¹[ F[OD₀] · clip(OTF(z − z₀ − s_c) / OTF(−s_c), −1, 1) ]      per channel c

OD₀ = −log₁₀(I / glass) is the crop's optical density (Beer–Lambert; glass = the image's bright
percentile), OTF Hopkins' defocus OTF of `phantom.optics` (NA drawn per crop from ``NA_RANGE``,
the detector pixel included), s_c the channel's focal shift. Dividing by the in-focus OTF treats
the real capture as what the objective already made of the layer in focus, so the image at z₀ is
the real crop itself (the ratio is 1); the clip keeps every frequency from growing (no defocus is
ever sharper than the capture: nothing is sharpened), and frequencies where the in-focus OTF
vanishes (< ``OTF_EPS``) are dropped. A
spatially varying z₀ is rendered by interpolating, per pixel, between the two rendered offsets
around z − z₀ (every ``OFFSET_STEP_UM``). Kinds of crop (``KINDS``):

* ``layer``: one real layer;
* ``two-layer``: two crops of different images, each at half its optical density, ``GAP_UM``
  apart (a thick section: no single plane has everything in focus);
* ``sparse``: a layer kept only inside random cell-sized blobs on clean glass (cytology-like).

Scale: a crop is rendered at the model's 0.25 µm/px, either as a 0.5 µm/px scan upsampled 2×
(bicubic; the model's input for a 20× slide) or taken pixel for pixel as if it were 0.25 µm/px
(finer texture, real statistics). Crops are taken from the most detailed tissue windows of each
image (gradient energy in the top half), i.e. its in-focus regions.

Output: the crop cache format of `refocus.dataset.build_cache` — ``grid`` (K, Z, H, W, 3) uint8, ``z``
(Z,) µm, ``zstar`` (K, H, W) µm (the z₀ map; for two layers the z of the denser one per px) and
``aif`` (K, H, W, 3) (every layer in focus) — so `refocus.dataset.FocalStackSampler` trains on both (and focus-quality training can label
patches of any plane with |z − z*|).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .optics import Optics, otf_defocus
from .realism_measures import tissue_mask
from .realism_references import REFERENCES, default_data_dir, load_image

__all__ = ["REAL_TEXTURES", "KINDS", "render_layers", "texture_crops", "load_textures", "build_texture_cache", "NA_RANGE"]

#: The real images used as textures: the references resolved at 0.5 µm/px.
REAL_TEXTURES = tuple(r for r in REFERENCES if r.structural)
KINDS = ("layer", "two-layer", "sparse")
KIND_PROBS = (0.5, 0.25, 0.25)
#: Numerical apertures drawn per crop (dry objectives of 20× and 40× scanners).
NA_RANGE = (0.5, 0.95)
MODEL_PX_UM = 0.25
#: Crop side (px at 0.25 µm/px) and focus grid (µm) by default: the refocus training crops'.
CROP = 256
Z_GRID_UM = np.round(np.arange(-3.0, 3.0 + 1e-6, 0.25), 4)
OTF_EPS = 1e-3
OFFSET_STEP_UM = 0.125
MAX_TILT_UM = 0.75
GAP_UM = (1.0, 3.0)
_OD_FLOOR = 1e-3
_PAD = 32


def _optical_density(rgb: np.ndarray, glass: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> OD float64 (≥ 0 for pixels no brighter than glass)."""
    t = np.clip(rgb.astype(np.float64) / glass, _OD_FLOOR, 1.0)
    return -np.log10(t)


def _glass(img: np.ndarray) -> np.ndarray:
    """Per-channel glass brightness (grey levels): the 99.5th percentile, at least 200."""
    return np.maximum(np.percentile(img.reshape(-1, 3), 99.5, axis=0), 200.0)


def render_layers(layers: list[tuple[np.ndarray, np.ndarray]], glass: np.ndarray, z_grid=Z_GRID_UM,
                  na: float = 0.75, px_um: float = MODEL_PX_UM, optics: Optics | None = None) -> np.ndarray:
    """Images of thin layers at every z of ``z_grid`` (µm): ``layers`` = [(OD (H, W, 3), z₀ map
    (H, W) µm), ...]; returns uint8 (Z, H, W, 3). See the module docstring for the model."""
    o = optics or Optics()
    z_grid = np.asarray(z_grid, np.float64)
    h, w = layers[0][0].shape[:2]
    hp, wp = h + 2 * _PAD, w + 2 * _PAD
    fy = np.fft.fftfreq(hp, d=px_um)
    fx = np.fft.rfftfreq(wp, d=px_um)
    nu = np.hypot(fy[:, None], fx[None, :])
    pixel = np.sinc(fy * px_um)[:, None] * np.sinc(fx * px_um)[None, :]
    prof_nu = np.linspace(0.0, float(nu.max()) * 1.0001, 512)
    od = np.zeros((len(z_grid), h, w, 3))
    for od0, z0 in layers:
        z0 = np.asarray(z0, np.float64)
        lo, hi = float(z_grid[0] - z0.max()), float(z_grid[-1] - z0.min())
        offsets = np.arange(math.floor(lo / OFFSET_STEP_UM) - 1, math.ceil(hi / OFFSET_STEP_UM) + 2) * OFFSET_STEP_UM
        for c in range(3):
            lam, shift = o.wavelengths_um[c], o.focal_shift_um[c]
            focus = np.interp(nu, prof_nu, otf_defocus(prof_nu, -shift, lam, na, o.n_immersion)) * pixel
            spec = np.fft.rfft2(np.pad(od0[..., c], _PAD, mode="reflect"))
            rendered = np.empty((len(offsets), h, w))
            for k, off in enumerate(offsets):
                otf = np.interp(nu, prof_nu, otf_defocus(prof_nu, off - shift, lam, na, o.n_immersion)) * pixel
                ratio = np.where(focus > OTF_EPS, np.clip(otf / np.maximum(focus, OTF_EPS), -1.0, 1.0), 0.0)
                rendered[k] = np.fft.irfft2(spec * ratio, s=(hp, wp))[_PAD:_PAD + h, _PAD:_PAD + w]
            for zi, z in enumerate(z_grid):
                t = np.clip((z - z0 - offsets[0]) / OFFSET_STEP_UM, 0, len(offsets) - 1 - 1e-9)
                k = np.floor(t).astype(np.int64)
                fr = t - k
                ii, jj = np.indices((h, w))
                od[zi, ..., c] += rendered[k, ii, jj] * (1 - fr) + rendered[k + 1, ii, jj] * fr
    img = glass[None, None, None, :] * np.power(10.0, -od)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _detailed_windows(img: np.ndarray, um_per_px: float, size: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size``² windows on a half-overlapping grid with at least half tissue,
    the more detailed half of them (gradient energy of the grey image)."""
    g = img.astype(np.float32).mean(2)
    gy, gx = np.gradient(g)
    energy = gx * gx + gy * gy
    mask = tissue_mask(img, um_per_px)
    out = []
    for y in range(0, img.shape[0] - size + 1, size // 2):
        for x in range(0, img.shape[1] - size + 1, size // 2):
            if mask[y:y + size, x:x + size].mean() >= 0.5:
                out.append((float(energy[y:y + size, x:x + size].mean()), x, y))
    out.sort(reverse=True)
    return [(x, y) for _, x, y in out[:max(1, len(out) // 2)]]


def _tilted_plane(size: int, rng: np.random.Generator, centre_um: float) -> np.ndarray:
    yy, xx = (np.mgrid[0:size, 0:size] / (size - 1) - 0.5)
    ang = rng.uniform(0, 2 * np.pi)
    tilt = rng.uniform(0, MAX_TILT_UM)
    return centre_um + tilt * (np.cos(ang) * xx + np.sin(ang) * yy)


def _blobs(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft mask of 3–12 cell-sized ellipses (8–20 µm across at 0.25 µm/px)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    m = np.zeros((size, size))
    for _ in range(int(rng.integers(3, 13))):
        cy, cx = rng.uniform(0, size, 2)
        a, b = rng.uniform(16, 40, 2)
        th = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        m = np.maximum(m, np.clip(1.5 - np.hypot(u / a, v / b) * 1.5, 0, 1))
    return m


def _crop_at_model_scale(img: np.ndarray, x: int, y: int, size: int, upsample: bool) -> np.ndarray:
    if not upsample:
        return img[y:y + size, x:x + size]
    half = size // 2
    t = torch.from_numpy(np.ascontiguousarray(img[y:y + half, x:x + half])).permute(2, 0, 1)[None].float()
    up = F.interpolate(t, scale_factor=2, mode="bicubic", align_corners=False)
    return up[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()


def texture_crops(images: list[tuple[np.ndarray, float]], count: int, rng: np.random.Generator,
                  size: int = CROP, z_grid=Z_GRID_UM) -> dict:
    """``count`` rendered crops from ``images`` = [(uint8 RGB, native µm/px), ...] in the crop
    cache format (module docstring)."""
    windows = [_detailed_windows(img, um, size) for img, um in images]
    glasses = [_glass(img) for img, _ in images]
    z_grid = np.asarray(z_grid, np.float64)
    out = {"grid": [], "zstar": [], "aif": []}

    def pick():
        i = int(rng.integers(0, len(images)))
        x, y = windows[i][int(rng.integers(0, len(windows[i])))]
        up = bool(rng.random() < 0.5)
        crop = _crop_at_model_scale(images[i][0], x, y, size, up)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return crop, glasses[i]

    for _ in range(count):
        kind = rng.choice(KINDS, p=KIND_PROBS)
        na = float(rng.uniform(*NA_RANGE))
        crop, glass = pick()
        z0 = _tilted_plane(size, rng, float(rng.uniform(-1.5, 1.5)))
        od = _optical_density(crop, glass)
        if kind == "sparse":
            od = od * _blobs(size, rng)[..., None]
        layers = [(od, z0)]
        zstar = z0
        if kind == "two-layer":
            crop2, _ = pick()
            od2 = _optical_density(crop2, glass)
            gap = float(rng.uniform(*GAP_UM)) * rng.choice((-1.0, 1.0))
            z1 = np.clip(z0 + gap, z_grid[0] + 0.5, z_grid[-1] - 0.5)
            layers = [(od * 0.5, z0), (od2 * 0.5, z1)]
            zstar = np.where(od.sum(2) >= od2.sum(2), z0, z1)
            od = (od + od2) * 0.5
        out["grid"].append(render_layers(layers, glass, z_grid, na))
        out["zstar"].append(np.asarray(zstar, np.float32))
        out["aif"].append(np.clip(np.round(glass * np.power(10.0, -od)), 0, 255).astype(np.uint8))
    return {"grid": np.stack(out["grid"]), "z": z_grid.astype(np.float32), "zstar": np.stack(out["zstar"]),
            "aif": np.stack(out["aif"])}


def load_textures(data_dir: Path | None = None) -> list[tuple[np.ndarray, float]]:
    """The ``REAL_TEXTURES`` that exist under ``data_dir`` (default ../shared/data), with their
    µm/px."""
    d = Path(data_dir) if data_dir is not None else default_data_dir()
    return [(load_image(d / r.relpath), float(r.um_per_px)) for r in REAL_TEXTURES if (d / r.relpath).exists()]


def build_texture_cache(out_dir: Path, files: int, crops_per_file: int = 16, data_dir: Path | None = None,
                        seed: int = 0, log=print) -> list[Path]:
    """Write ``files`` cache files ``texture-<k>.npz`` of ``crops_per_file`` crops each into
    ``out_dir`` (skipping those present; file k is drawn from seed (``seed``, k), so a rerun adds
    the same files). Returns the paths; none when no real texture is found."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = None
    paths = []
    for k in range(files):
        path = out_dir / f"texture-{k}.npz"
        if not path.exists():
            if images is None:
                images = load_textures(data_dir)
                if not images:
                    log(f"no real texture image found under {data_dir or default_data_dir()}")
                    return []
            crops = texture_crops(images, crops_per_file, np.random.default_rng([seed, k, 31]))
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **crops)
            tmp.rename(path)
            log(f"cached {crops_per_file} real-texture crops -> {path}")
        paths.append(path)
    return paths
