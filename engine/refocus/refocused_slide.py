"""`RefocusedSlide`: another slide seen at any focus z (µm), between, beyond or without its
captured planes, computed by the virtual refocusing model. A computed source like any other
(`engine.slides.base.Slide`): the tile store, the viewer and the exports read it as a slide.

Geometry is the base slide's (levels, µm per px, tile size); it has one plane, at ``z_um``.

How a region is made:

* **z on a captured plane** (within ``ON_PLANE_UM``): that plane's own pixels, at every level.
* **Level 0**: the slide is cut into blocks of ``BLOCK`` model px (0.25 µm each: 128 µm) on a
  fixed grid. Each block is encoded once, with a ``HALO`` model px margin of context on every
  side (the encoder's receptive field reaches past the block; without the margin block seams
  would show), into a `Radiance` that the shared `RadianceCache` keeps (bounded in bytes, each
  block encoded once even when several tile reads ask for it at the same time). A focus change
  then only runs the decoder on the cached field and crops the margin. The encoder takes every
  captured plane (at most the 16 nearest the middle of the stack), each at its nominal z. The
  model's correction of the plane blend is weighted by its trust on this slide (`trust`,
  measured once per slide on its own captured planes: 1 for a single plane).
* **Coarser levels** (downsample ≥ 2): the model is not run there (a coarse view must stay
  interactive while the fine tiles are computed). Where the defocus blur of z — its geometric
  radius ``|z − z_p| · NA`` for the distance to the nearest captured plane z_p, NA 0.75 —
  spans more than ``BLUR_PX`` px of the level, the level shows what the optics predict at the
  level's own pitch (`optics_baseline.OpticsRefocus` on the captured planes read at that level,
  with ``PAD_UM`` µm of real context around the region); where it spans less, the linear blend
  of the two captured planes around z, which it is then indistinguishable from. So a knob turned
  2 µm off a single 20× plane blurs the zoomed-out view too (``level_mode`` says which).

The model works at 0.25 µm/px; a slide of another resolution is resampled there and back for
each block (`model_scale`), and its blocks span the same 128 µm (``block_px`` level-0 px), so a
field costs the same memory at any scan resolution. Thread-safe: reads may run on several tile-store workers at once.
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..slides.base import Slide, edge_fill_outside
from ..tiles.compute_cache import ComputeOnceCache
from ..tiles.grid import level_px_to_level0
from ..tiles.request import TileRequest
from .baselines import blend, linear_weights
from .model import MAX_PLANES, RefocusNet
from .native_pitch import to_native_pitch
from .optics_baseline import PAD_UM, OpticsRefocus
from .radiance import CompactRadiance, Radiance
from .trust import slide_trust

__all__ = ["RefocusedSlide", "RadianceCache", "model_scale", "shipped_model", "BLOCK", "HALO"]

#: Block edge of the radiance grid and the context margin encoded around a block, in model px
#: (0.25 µm; level-0 px of a 40× scan).
BLOCK = 512
HALO = 32
#: A z within this distance (µm) of a captured plane shows that plane's own pixels.
ON_PLANE_UM = 1e-3
#: The model's pixel pitch (µm).
MODEL_MPP = 0.25
#: A coarser level shows the optics' refocusing where the defocus blur radius (µm of distance
#: to the nearest captured plane × ``LEVEL_NA``) spans more than this many of its px.
BLUR_PX = 1.0
LEVEL_NA = 0.75
#: Default memory for radiance fields: about 50 blocks of 576² px kept compact (int8).
DEFAULT_RADIANCE_BYTES = 1 << 30
#: Memory for the decoded blocks of one focus (uint8, 0.75 MB per 512² block: a 2560² view).
DECODED_BLOCK_BYTES = 24 << 20


def model_scale(mpp: tuple[float, float] | None) -> float:
    """Factor from a slide's level-0 px to the model's 0.25 µm/px (1 when the slide does not say
    or is within 20 % of it)."""
    if not mpp or not mpp[0] or not mpp[0] > 0:
        return 1.0
    s = float(mpp[0]) / MODEL_MPP
    return 1.0 if abs(s - 1.0) < 0.2 else s


@lru_cache(maxsize=1)
def shipped_model() -> RefocusNet:
    """The shipped refocusing model (resources/weights/refocus.pt), loaded once per process."""
    from .weights import load_model, shipped_weights

    path = shipped_weights()
    if path is None:
        raise FileNotFoundError("no refocusing weights shipped in resources/weights/refocus.pt")
    return load_model(path)[0]


class RadianceCache(ComputeOnceCache):
    """Radiance fields of slide blocks, bounded in bytes (`Radiance.nbytes`), stored as ``dtype``:
    ``torch.int8`` (the default) keeps each field as a `CompactRadiance` (int8 latents and keys,
    uint8 planes: about a third of float16's bytes), float16 or float32 keep it as it is (the
    decoder computes in float32 either way)."""

    def __init__(self, max_bytes: int = DEFAULT_RADIANCE_BYTES, dtype: torch.dtype = torch.int8):
        super().__init__(max_bytes, size_of=lambda r: r.nbytes)
        self.dtype = dtype

    def store(self, field: Radiance):
        """``field`` as this cache keeps it."""
        return field.compact() if self.dtype == torch.int8 else field.to(self.dtype)


_trust_by_slide: dict[tuple, float] = {}
_trust_lock = threading.Lock()
_default_cache: RadianceCache | None = None
_default_lock = threading.Lock()


def default_cache() -> RadianceCache:
    """The process-wide radiance cache that `RefocusedSlide` uses unless given one."""
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            _default_cache = RadianceCache()
        return _default_cache


def weights_digest(model: torch.nn.Module) -> str:
    """A short digest of a model's parameters and buffers: equal for equal weights."""
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@lru_cache(maxsize=8)
def _radiance_bytes_per_model_px(model: RefocusNet, n_planes: int, dtype: torch.dtype) -> float:
    """Cache bytes per model px of a field of ``n_planes`` planes (a 64² encode, measured)."""
    side = 64
    with torch.no_grad():
        rad = model.encode(torch.zeros(1, n_planes, 3, side, side), torch.zeros(1, n_planes))
    stored = rad.compact() if dtype == torch.int8 else rad.to(dtype)
    return stored.nbytes / (side * side)


def encode_planes(planes_um: tuple[float, ...], count: int = MAX_PLANES) -> list[int]:
    """Indices of the planes the encoder takes: all of them, or the ``count`` nearest the middle
    of the stack, in ascending z."""
    centre = (min(planes_um) + max(planes_um)) / 2
    nearest = sorted(range(len(planes_um)), key=lambda i: (abs(planes_um[i] - centre), i))[:count]
    return sorted(nearest)


class RefocusedSlide(Slide):
    """``base`` seen at focus ``z_um`` (µm, the base's z frame); see the module docstring."""

    format = "refocused"

    def __init__(self, base: Slide, z_um: float, model: RefocusNet | None = None,
                 cache: RadianceCache | None = None, blend_only: bool = False):
        z = float(z_um)
        if not np.isfinite(z):
            raise ValueError(f"focus must be a finite number of µm, got {z_um!r}")
        self.base = base
        self.z_um = z
        self.model = model
        self.cache = cache if cache is not None else default_cache()
        #: Names the weights in the cache keys and the uid: fields of two models never mix (a
        #: digest of a custom model's parameters, not its address, which a later model may reuse).
        self.weights_tag = "shipped" if model is None else f"model-{weights_digest(model)}"
        self.path = base.path
        self.levels = base.levels
        self.mpp = base.mpp
        self.planes_um = (z,)
        self.properties = {"refocus.z_um": f"{z:g}", "refocus.base_planes_um": ",".join(f"{p:g}" for p in base.planes_um)}
        self.tile_size = base.tile_size
        self.encoded_planes = encode_planes(base.planes_um)
        #: (captured plane, weight) of the linear blend at z: the two planes around z (the
        #: nearest alone beyond them), for coarse levels and stand-ins.
        focus = torch.tensor([base.planes_um], dtype=torch.float32)[..., None, None]
        wts = linear_weights(focus, torch.tensor([z]))[0, :, 0, 0].tolist()
        self.blend_weights = [(i, w) for i, w in enumerate(wts) if w > 1e-6]
        scale = model_scale(base.mpp)
        #: Block edge and margin in level-0 px of this slide.
        self.block_px = max(64, int(round(BLOCK / scale)))
        self.halo_px = max(8, int(round(HALO / scale)))
        self.captured_plane = next((i for i, p in enumerate(base.planes_um) if abs(p - z) <= ON_PLANE_UM), None)
        #: Decoded level-0 blocks at this z: a tile store's tiles rarely line up with the blocks,
        #: so several tiles read each block; it is decoded once for all of them.
        self.decoded_blocks = ComputeOnceCache(DECODED_BLOCK_BYTES)
        #: Level 0 shows the linear blend too (no radiance): the viewer's fallback for a view
        #: whose radiance would not fit its budget (`engine.refocus.radiance_budget`).
        self.blend_only = bool(blend_only)

    @property
    def uid(self) -> str:
        mode = "|blend" if self.blend_only else ""
        return f"{self.base.uid}|refocus|z={self.z_um:+.4f}|weights={self.weights_tag}{mode}"

    @property
    def decodes(self) -> bool:
        """True when level 0 is computed from radiance fields (off the captured planes, not
        ``blend_only``)."""
        return self.captured_plane is None and not self.blend_only

    # ------------------------------------------------------------------ blocks
    def blocks_in(self, x: float, y: float, w: float, h: float) -> list[tuple[int, int]]:
        """Blocks ``(bx, by)`` of the level-0 grid that the level-0 rectangle (x, y, w, h)
        touches, clipped to the slide; nearest the rectangle's centre first."""
        W, H = self.dimensions
        B = self.block_px
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(W), x + w), min(float(H), y + h)
        if x1 <= x0 or y1 <= y0:
            return []
        cols = range(int(x0 // B), int((x1 - 1e-9) // B) + 1)
        rows = range(int(y0 // B), int((y1 - 1e-9) // B) + 1)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        return sorted(((bx, by) for by in rows for bx in cols),
                      key=lambda b: ((b[0] + 0.5) * B - cx) ** 2 + ((b[1] + 0.5) * B - cy) ** 2)

    def radiance_key(self, bx: int, by: int) -> tuple:
        """The `RadianceCache` key of block (bx, by): the same for every z of this base slide
        and model, so all focus values share the encoded fields."""
        return (self.base.uid, self.weights_tag, tuple(self.encoded_planes), bx, by)

    def has_radiance(self, bx: int, by: int) -> bool:
        """Whether block (bx, by)'s field is encoded and cached (never encodes)."""
        return self.radiance_key(bx, by) in self.cache

    def block_radiance_bytes(self) -> int:
        """Bytes one full block's radiance field (margin included) takes in the cache: measured
        on a small encode of the same planes and scaled by area (all of a field's tensors grow
        with its px count)."""
        side = int(round((self.block_px + 2 * self.halo_px) * model_scale(self.mpp)))
        side = -(-side // 8) * 8
        per_px = _radiance_bytes_per_model_px(self._model(), len(self.encoded_planes), self.cache.dtype)
        return int(per_px * side * side)

    def trust(self) -> float:
        """The model's trust on this slide's captured planes (`trust.slide_trust`; 1 for a single
        plane), measured once per base slide and model and shared by every z."""
        key = (self.base.uid, self.weights_tag)
        with _trust_lock:
            got = _trust_by_slide.get(key)
        if got is None:
            got = slide_trust(self._model(), self.base, self.encoded_planes, model_scale(self.mpp))
            with _trust_lock:
                _trust_by_slide[key] = got
        return got

    def _model(self) -> RefocusNet:
        return self.model if self.model is not None else shipped_model()

    # ------------------------------------------------------------------ pixels
    def _read(self, level: int, lx: int, ly: int, w: int, h: int, plane: int) -> np.ndarray:
        if self.captured_plane is not None:
            return self.base.read_region(level, self._level0(level, lx), self._level0(level, ly), w, h, self.captured_plane)
        if self.blend_only or (level > 0 and self.level_mode(level) == "blend"):
            return self._blend(level, lx, ly, w, h)
        if level > 0:
            return self._optics(level, lx, ly, w, h)
        out = np.empty((h, w, 3), np.uint8)
        B = self.block_px
        for by in range(ly // B, (ly + h - 1) // B + 1):
            for bx in range(lx // B, (lx + w - 1) // B + 1):
                x0, y0 = bx * B, by * B
                xs, ys = max(lx, x0), max(ly, y0)
                xe, ye = min(lx + w, x0 + B), min(ly + h, y0 + B)
                img = self.block(bx, by)
                out[ys - ly:ye - ly, xs - lx:xe - lx] = img[ys - y0:ye - y0, xs - x0:xe - x0]
        return out

    def level_pitch_um(self, level: int) -> float:
        """µm per px at ``level`` (the model's 0.25 µm/px assumed when the slide does not say)."""
        mpp = self.mpp[0] if self.mpp and self.mpp[0] and self.mpp[0] > 0 else MODEL_MPP
        return float(mpp) * float(self.levels[level].downsample)

    def level_mode(self, level: int) -> str:
        """How ``level`` is made at this z: ``"plane"`` (a captured plane's pixels), ``"model"``
        (level 0), ``"optics"`` (the defocus blur spans more than ``BLUR_PX`` px there) or
        ``"blend"`` (see the module docstring)."""
        if self.captured_plane is not None:
            return "plane"
        if self.blend_only:
            return "blend"
        if level == 0:
            return "model"
        gap = min(abs(self.z_um - p) for p in self.base.planes_um)
        return "optics" if gap * LEVEL_NA / self.level_pitch_um(level) > BLUR_PX else "blend"

    def _optics(self, level: int, lx: int, ly: int, w: int, h: int) -> np.ndarray:
        """The optics' prediction at z for a region of ``level``, from the captured planes at
        that level (at most the 3 nearest z) with ``PAD_UM`` µm of context."""
        px = self.level_pitch_um(level)
        m = int(math.ceil(PAD_UM / px))
        lw, lh = self.levels[level].width, self.levels[level].height
        x0, y0 = max(0, lx - m), max(0, ly - m)
        x1, y1 = min(lw, lx + w + m), min(lh, ly + h + m)
        if x1 <= x0 or y1 <= y0:
            return self._blend(level, lx, ly, w, h)
        near = sorted(range(len(self.base.planes_um)), key=lambda i: abs(self.base.planes_um[i] - self.z_um))[:3]
        near.sort(key=lambda i: self.base.planes_um[i])
        X, Y = self._level0(level, x0), self._level0(level, y0)
        planes = np.stack([self.base.read_region(level, X, Y, x1 - x0, y1 - y0, i) for i in near])
        pred = OpticsRefocus(planes, [self.base.planes_um[i] for i in near], px).refocus(self.z_um)
        out = np.full((h, w, 3), 255, np.uint8)
        img = np.clip(pred * 255.0 + 0.5, 0, 255).astype(np.uint8)
        xs, ys = max(lx, x0), max(ly, y0)
        xe, ye = min(lx + w, x1), min(ly + h, y1)
        out[ys - ly:ye - ly, xs - lx:xe - lx] = img[ys - y0:ye - y0, xs - x0:xe - x0]
        if (xe - xs, ye - ys) != (w, h):         # past the slide's edge: the blend's fill
            blend = self._blend(level, lx, ly, w, h)
            mask = np.ones((h, w), bool)
            mask[ys - ly:ye - ly, xs - lx:xe - lx] = False
            out[mask] = blend[mask]
        return out

    def _level0(self, level: int, l: int) -> int:
        """A level coordinate as the level-0 coordinate `read_region` takes, mapping back to
        exactly ``l`` also for non-integer downsamples (rounding would land one level px short
        about half the time, e.g. at an OpenSlide downsample of 4.0006)."""
        return level_px_to_level0(self, level, l)

    @staticmethod
    def _mix(parts: list[tuple[float | np.ndarray, np.ndarray]]) -> np.ndarray:
        """Σ weight · image, rounded to uint8; a weight is a number or per pixel, (h, w, 1)."""
        acc = sum(w * img.astype(np.float32) for w, img in parts)
        return np.clip(acc + 0.5, 0, 255).astype(np.uint8)

    def _blend(self, level: int, lx: int, ly: int, w: int, h: int) -> np.ndarray:
        """Linear blend of the two captured planes nearest z, read at ``level``."""
        x, y = self._level0(level, lx), self._level0(level, ly)
        return self._mix([(wt, self.base.read_region(level, x, y, w, h, i)) for i, wt in self.blend_weights])

    def stand_in(self, cached: Callable[[TileRequest], np.ndarray | None], request: TileRequest) -> np.ndarray | None:
        """Pixels to show at once while the tile ``request`` is computed: the blend of the base
        slide's *cached* tiles of the planes around z (``cached`` looks a tile up without
        reading; when only one of the two is cached, that one alone), or None when neither is.
        The tile store calls it."""
        parts = []
        for i, wt in self.blend_weights:
            tile = cached(TileRequest(self.base.uid, request.level, request.col, request.row, i, request.tile_size))
            if tile is not None:
                parts.append((wt, tile))
        total = sum(wt for wt, _ in parts)
        return self._mix([(wt / total, t) for wt, t in parts]) if parts else None

    def stand_in_sources(self, request: TileRequest) -> list[tuple[Slide, int]]:
        """``(slide, plane)`` of the tiles ``stand_in`` is made of (the captured planes around z
        at the request's level and cell): a viewer fetches them first, on its fast readers."""
        if self.captured_plane is not None:
            return []
        return [(self.base, i) for i, _ in self.blend_weights]

    def block(self, bx: int, by: int) -> np.ndarray:
        """Block (bx, by) of the level-0 grid at z: uint8 (block_px, block_px, 3) (clipped at
        the slide's right and bottom edges), read-only; decoded once and kept while this slide
        lives (``DECODED_BLOCK_BYTES``)."""
        return self.decoded_blocks.get((bx, by), lambda: self._decode_block(bx, by))

    def _decode_block(self, bx: int, by: int) -> np.ndarray:
        W, H, B, M = *self.dimensions, self.block_px, self.halo_px
        bw, bh = min(B, W - bx * B), min(B, H - by * B)
        rad = self.radiance(bx, by)
        model = self._model()
        if isinstance(rad, CompactRadiance):
            rad = rad.dense()
        target = self._target(bx * B - M, by * B - M, bw + 2 * M, bh + 2 * M, rad.size)
        with torch.no_grad():
            out = model.decode(rad, target)
        size = (bh + 2 * M, bw + 2 * M)
        alpha = self.trust()
        focus = torch.tensor([[self.base.planes_um[i] for i in self.encoded_planes]], dtype=torch.float32)
        if out.shape[-2] < size[0] and target.numel() > 1:     # finer than the model, a per-pixel target:
            out = to_native_pitch(out, rad.images, focus, target, None, out.shape[-2:], alpha)
            out = F.interpolate(out, size=size, mode="bicubic", align_corners=False)   # plain resampling
        else:
            native = None
            if out.shape[-2] < size[0]:                          # finer than the model: keep its px
                mix = self._blend(0, bx * B - M, by * B - M, size[1], size[0])
                native = torch.from_numpy(mix).permute(2, 0, 1)[None].float().div_(255.0)
            out = to_native_pitch(out, rad.images, focus, target, native, size, alpha)
        img = (out[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        return np.ascontiguousarray(img[M:M + bh, M:M + bw])

    def _target(self, x: int, y: int, w: int, h: int, model_hw: tuple[int, int]) -> torch.Tensor:
        """The decoder's target focus (µm) for the level-0 region (x, y, w, h) seen as a
        ``model_hw`` model-px field: here z everywhere, (1,); a focus-mapped slide gives a map."""
        return torch.tensor([self.z_um])

    def radiance(self, bx: int, by: int) -> Radiance:
        """The cached radiance field of block (bx, by) (its margin included); encoded on a miss."""
        return self.cache.get(self.radiance_key(bx, by), lambda: self._encode(bx, by))

    def _encode(self, bx: int, by: int) -> Radiance:
        W, H, B, M = *self.dimensions, self.block_px, self.halo_px
        bw, bh = min(B, W - bx * B), min(B, H - by * B)
        x, y = bx * B - M, by * B - M
        planes = np.stack([edge_fill_outside(self.base.read_region(0, x, y, bw + 2 * M, bh + 2 * M, i), x, y, W, H)
                           for i in self.encoded_planes])
        stack = torch.from_numpy(planes).permute(0, 3, 1, 2).float().div_(255.0)
        s = model_scale(self.mpp)
        if s != 1.0:
            stack = F.interpolate(stack, scale_factor=s, mode="bicubic", align_corners=False).clamp_(0, 1)
        focus = torch.tensor([[self.base.planes_um[i] for i in self.encoded_planes]], dtype=torch.float32)
        with torch.no_grad():
            rad = self._model().encode(stack[None], focus)
        return self.cache.store(rad)

    def info(self) -> dict:
        d = super().info()
        d["base_planes_um"] = [float(z) for z in self.base.planes_um]
        return d

    def close(self) -> None:
        """The base slide belongs to its opener; nothing to release here."""
