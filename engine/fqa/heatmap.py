"""Whole-slide focus heatmaps: one score per patch on a regular grid, tissue only.

Geometry (thesis Sec. 3.4): square patches of ``patch`` = 235 px at ``stride`` = 128 px, in pixels
of ``level`` (level 0 by default), the first patch's top-left at ``origin`` (level-0 px). Patch
(row, col) covers level pixels [stride·col, stride·col + patch) × [stride·row, …). Glass patches
(see engine/fqa/tissue.py) are NaN.

Computation is fully convolutional: the slide is read in large tiles ("blocks" of
``tile_patches`` × ``tile_patches`` patches plus the overlap a patch needs), each block is scored
in one pass (one convolution for FocusLiteNN, one set of per-pixel maps for a classical metric),
and patches are pooled out of the block's response. Neighbouring blocks re-read only the
``patch − stride`` px overlap. While a block is scored, a reader thread decodes the next one.

FocusLiteNN's stride-5 response grid does not line up with a 128-px stride (128 mod 5 = 3): each
patch pools the 46×46 response cells that start at the first cell inside it, i.e. its window is
snapped to the 5-px grid (a shift of at most 4 px, below the scale of focus variation). Blocks
are read starting on the global 5-px grid, so scores do not depend on the block size.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from ..slides.base import Slide, edge_fill_outside
from ..tiles.cancel import cancel_requested
from .focuslitenn import _MEAN, _STD, KERNEL, STRIDE, FocusLiteNN
from .metrics import Metric, to_gray
from .tissue import tissue_patches

PATCH = 235
GRID_STRIDE = 128

#: Scores the patches of one RGB tile: (rgb uint8 (H, W, 3), patch, stride, phase) → (rows, cols);
#: the patch grid starts at ``phase`` = (dy, dx) px inside the tile, and the tile carries STRIDE px
#: beyond the last patch on the right and bottom.
TileScorer = Callable[[np.ndarray, int, int], np.ndarray]


@dataclass(frozen=True)
class HeatmapGeometry:
    """Where heatmap cells sit on the slide. ``patch`` and ``stride`` are px of ``level``;
    ``origin`` is level-0 px; ``downsample`` is the level's downsample."""

    patch: int
    stride: int
    level: int
    downsample: float
    origin: tuple[int, int]
    shape: tuple[int, int]

    def cell_rect_level0(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(x, y, w, h) in level-0 px of patch (row, col)."""
        d = self.downsample
        return (self.origin[0] + col * self.stride * d, self.origin[1] + row * self.stride * d,
                self.patch * d, self.patch * d)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["origin"], d["shape"] = list(self.origin), list(self.shape)
        return d


def folded_conv(model: FocusLiteNN) -> tuple[torch.Tensor, torch.Tensor]:
    """FocusLiteNN's convolution with the input scaling folded in: weights (N, 3, 7, 7) and bias
    (N,) that take raw 0–255 pixel values, so ``conv2d(rgb, w, b, stride=5)`` equals
    ``model.response_map(rgb / 255)`` up to float rounding (≈1e-6)."""
    w = model.conv.weight.detach().double()
    b = model.conv.bias.detach().double()
    scale = 1.0 / (255.0 * _STD)
    return (w * scale).float().contiguous(), (b - w.sum(dim=(1, 2, 3)) * (_MEAN / _STD)).float()


class BlockConv:
    """FocusLiteNN's 7×7 stride-5 convolution over a uint8 RGB tile as one matrix product.

    The tile is cut into 5×5-px blocks; response cell (i, j) sees block (i, j) whole plus the
    first 2 rows / columns of blocks (i + 1, j), (i, j + 1) and (i + 1, j + 1). So each kernel is
    split into four 5×5 sub-kernels (zero-padded), every block is multiplied by all of them at
    once ((blocks, 75) @ (75, 4N)), and the four partial responses are added with a one-block
    shift. The only copy of the tile is the uint8 → float32 reordering into blocks. Equal to
    ``model.response_map(rgb / 255)`` up to float rounding (≈1e-6)."""

    def __init__(self, model: FocusLiteNN):
        w, self.bias = folded_conv(model)
        n = w.shape[0]
        k = torch.zeros(4, n, 3, 5, 5, dtype=w.dtype)
        k[0] = w[:, :, 0:5, 0:5]
        k[1, :, :, 0:2, :] = w[:, :, 5:7, 0:5]
        k[2, :, :, :, 0:2] = w[:, :, 0:5, 5:7]
        k[3, :, :, 0:2, 0:2] = w[:, :, 5:7, 5:7]
        self.n = n
        self.matrix = k.permute(3, 4, 2, 0, 1).reshape(75, 4 * n).contiguous()  # (u·v·c, part·N)

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """Responses (N, H', W') of uint8 (H, W, 3), H' = (H − 7) // 5 + 1."""
        H, W = rgb.shape[:2]
        hb, wb = (H - 7) // STRIDE + 2, (W - 7) // STRIDE + 2  # blocks, incl. the partial last
        if (hb * STRIDE, wb * STRIDE) != (H, W):  # pad to whole blocks (never used past H, W)
            rgb = np.pad(rgb[:hb * STRIDE, :wb * STRIDE],
                         ((0, max(hb * STRIDE - H, 0)), (0, max(wb * STRIDE - W, 0)), (0, 0)))
        blocks5 = np.empty((hb, wb, STRIDE, STRIDE, 3), np.float32)
        np.copyto(blocks5, rgb.reshape(hb, STRIDE, wb, STRIDE, 3).transpose(0, 2, 1, 3, 4))
        r = (torch.from_numpy(blocks5).view(-1, 75) @ self.matrix).view(hb, wb, 4, self.n)
        out = r[:-1, :-1, 0] + r[1:, :-1, 1] + r[:-1, 1:, 2] + r[1:, 1:, 3] + self.bias
        return out.permute(2, 0, 1)


def patch_cells(n_patches: int, patch: int = PATCH, stride: int = GRID_STRIDE,
                offset: int = 0) -> list[tuple[int, int]]:
    """(first cell, cell count) along one axis of FocusLiteNN's stride-5 response map for each of
    ``n_patches`` patches at ``stride`` px, the first starting ``offset`` px into the tile: the
    grid positions from the first one at or after the patch's start whose 7-px kernels lie wholly
    inside the patch (46 for 235 px; one fewer when the grid starts 4 px in; never a pixel of the
    next patch or of the padding past the slide's edge)."""
    out = []
    for i in range(n_patches):
        start = offset + i * stride
        a = -(-start // STRIDE)
        out.append((a, (patch - KERNEL - (a * STRIDE - start)) // STRIDE + 1))
    return out


def focuslitenn_scorer(model: FocusLiteNN) -> TileScorer:
    """A TileScorer running one convolution over the tile (`BlockConv`), then pooling each
    patch window. The model's weights are read once, when the scorer is made."""
    conv = BlockConv(model)
    w_max, w_min, offset = (p.detach().clone() for p in (model.w_max, model.w_min, model.offset))

    @torch.inference_mode()
    def score(rgb: np.ndarray, patch: int, stride: int, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
        # ``phase`` = (dy, dx): where the patch grid starts inside ``rgb`` (px); rgb's own origin
        # lies on the global 5-px grid, so cells are aligned the same way however the slide is tiled.
        resp = conv(rgb)  # (N, H', W')
        dy, dx = phase
        H, W = rgb.shape[0] - dy - STRIDE, rgb.shape[1] - dx - STRIDE
        rows, cols = (H - patch) // stride + 1, (W - patch) // stride + 1
        n_cells = (patch - KERNEL) // STRIDE + 1
        cells_r, cells_c = patch_cells(rows, patch, stride, dy), patch_cells(cols, patch, stride, dx)
        starts_c = [a for a, _ in cells_c]
        counts_c = torch.tensor([k for _, k in cells_c])
        # Pool rows of cells per patch row, then columns per patch column.
        row_max = torch.stack([resp[:, a:a + k].amax(1) for a, k in cells_r], 1)  # (N, rows, W')
        row_min = torch.stack([resp[:, a:a + k].amin(1) for a, k in cells_r], 1)
        # (cols, n_cells); a column with one cell fewer repeats its last (max/min unchanged).
        idx = torch.tensor(starts_c)[:, None] + torch.minimum(torch.arange(n_cells)[None], counts_c[:, None] - 1)
        mx = row_max[:, :, idx].amax(-1).permute(1, 2, 0)  # (rows, cols, N)
        mn = row_min[:, :, idx].amin(-1).permute(1, 2, 0)
        return (mx @ w_max + mn @ w_min + offset).numpy().astype(np.float32)  # Eq. 3.5

    return score


def metric_scorer(metric: Metric) -> TileScorer:
    """A TileScorer for a classical metric, oriented so that higher = blurrier."""

    def score(rgb: np.ndarray, patch: int, stride: int, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
        # The maps see the whole tile: the pixels before ``phase`` and past the grid are the halo.
        dy, dx = phase
        grid = (dy, rgb.shape[0] - STRIDE, dx, rgb.shape[1] - STRIDE)
        return metric.blur_score(metric.score_grid(to_gray(rgb), patch, stride, grid))

    return score


def grid_shape(width: int, height: int, patch: int = PATCH, stride: int = GRID_STRIDE) -> tuple[int, int]:
    """(rows, cols) of the patch grid over a level of ``width`` × ``height`` px."""
    return max((height - patch) // stride + 1, 0), max((width - patch) // stride + 1, 0)


def heatmap_geometry(slide: Slide, level: int = 0, patch: int = PATCH,
                     stride: int = GRID_STRIDE) -> HeatmapGeometry:
    """The patch grid `compute_heatmap` scores on ``level`` of ``slide``."""
    lv = slide.levels[level]
    return HeatmapGeometry(patch, stride, level, lv.downsample, (0, 0),
                           grid_shape(lv.width, lv.height, patch, stride))


# ---------------------------------------------------------------- blocks of patches
@dataclass(frozen=True)
class Block:
    """Patches [r0, r1) × [c0, c1) of a heatmap grid and the region to read for them:
    ``x``, ``y`` level-0 px, ``w``, ``h`` px of the level; the patch grid starts at
    ``phase`` = (dy, dx) px inside the region, which begins on the global 5-px grid (``HALO_PX``
    before the first patch, rounded down to it), reaches ``HALO_PX`` + STRIDE to ``HALO_PX`` +
    2·STRIDE − 1 px past the last patch and is a whole number of 5-px blocks."""

    r0: int
    r1: int
    c0: int
    c1: int
    x: int
    y: int
    w: int
    h: int
    phase: tuple[int, int]


#: Context read around every block (px of the level, a whole number of 5-px blocks): the
#: classical metrics' filters (Sobel, Laplacian, DoG, a 3-level Haar transform) reach up to about
#: 8 px, so a patch scores the same in any block and at any block size (no seams).
HALO_PX = 10


def block(geom: HeatmapGeometry, r0: int, r1: int, c0: int, c1: int) -> Block:
    """The read region for patches [r0, r1) × [c0, c1) of ``geom``, with ``HALO_PX`` around it."""
    px, py = c0 * geom.stride, r0 * geom.stride  # level px
    dx, dy = px % STRIDE + HALO_PX, py % STRIDE + HALO_PX
    w = (c1 - c0 - 1) * geom.stride + geom.patch + dx + STRIDE + HALO_PX
    h = (r1 - r0 - 1) * geom.stride + geom.patch + dy + STRIDE + HALO_PX
    w, h = -(-w // STRIDE) * STRIDE, -(-h // STRIDE) * STRIDE  # whole 5-px blocks (BlockConv)
    d = geom.downsample
    # level-0 start that read_region maps back exactly to the level px (floor(x / d) == px − dx)
    x0 = (px - dx) if d == 1 else math.ceil((px - dx) * d)
    y0 = (py - dy) if d == 1 else math.ceil((py - dy) * d)
    return Block(r0, r1, c0, c1, geom.origin[0] + x0, geom.origin[1] + y0, w, h, (dy, dx))


def blocks(geom: HeatmapGeometry, tile_patches: int) -> Iterator[Block]:
    """The blocks of ``tile_patches``² patches that cover the grid, row by row."""
    rows, cols = geom.shape
    for r0 in range(0, rows, tile_patches):
        for c0 in range(0, cols, tile_patches):
            yield block(geom, r0, min(r0 + tile_patches, rows), c0, min(c0 + tile_patches, cols))


def tissue_grid(rgb: np.ndarray, patch: int, stride: int, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Which patches of a tile (laid out as for a TileScorer) are tissue (`tissue.tissue_patches`)."""
    dy, dx = phase
    return tissue_patches(rgb[dy:rgb.shape[0] - STRIDE, dx:rgb.shape[1] - STRIDE], patch, stride)


def tissue_scorer(rgb: np.ndarray, patch: int, stride: int, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A TileScorer giving 1.0 for a tissue patch and 0.0 for glass."""
    return tissue_grid(rgb, patch, stride, phase).astype(np.float32)


def score_pixels(rgb: np.ndarray, b: Block, scorers: dict[str, TileScorer], patch: int,
                 stride: int, mask_glass: bool = True) -> dict[str, np.ndarray]:
    """Scores (r1 − r0, c1 − c0) float32 of the block's patches from its pixels, NaN on glass
    (every patch scored when ``mask_glass`` is False)."""
    shape = (b.r1 - b.r0, b.c1 - b.c0)
    tissue = tissue_grid(rgb, patch, stride, b.phase) if mask_glass else np.ones(shape, bool)
    out = {}
    with _torch_threads(1):
        for name, scorer in scorers.items():
            if tissue.any():
                out[name] = np.where(tissue, scorer(rgb, patch, stride, b.phase), np.float32(np.nan))
            else:
                out[name] = np.full(shape, np.nan, np.float32)
    return out


def score_block(slide: Slide, scorers: dict[str, TileScorer], geom: HeatmapGeometry, b: Block,
                plane: int = 0) -> dict[str, np.ndarray]:
    """Read and score one block of ``geom`` on ``plane`` (for lazily computed heatmaps)."""
    return score_pixels(read_block(slide, geom, b, plane), b, scorers, geom.patch, geom.stride)


def read_block(slide: Slide, geom: HeatmapGeometry, b: Block, plane: int = 0) -> np.ndarray:
    """The pixels of block ``b`` on ``plane``, as every heatmap and depth map reads them: context
    past the level's edges is the nearest edge pixel (`edge_filled`)."""
    lv = slide.levels[geom.level]
    return edge_filled(slide.read_region(geom.level, b.x, b.y, b.w, b.h, plane), b, geom, lv.width, lv.height)


def edge_filled(rgb: np.ndarray, b: Block, geom: HeatmapGeometry, width: int, height: int) -> np.ndarray:
    """A block's pixels with whatever lies past the level's edges (``width`` × ``height`` px,
    where `Slide.read_region` gives white) replaced by the nearest pixel inside. The metrics'
    filters reach into the halo: a white margin would be a false edge and make the border patches
    of a tissue image (e.g. a cropped field scored by `fqa score`) look sharper than they are."""
    x0 = b.c0 * geom.stride - b.phase[1]  # level px of the block's first column / row
    y0 = b.r0 * geom.stride - b.phase[0]
    return edge_fill_outside(rgb, x0, y0, width, height)


def compute_heatmap(slide: Slide, scorers: dict[str, TileScorer], *, level: int = 0, plane: int = 0,
                    patch: int = PATCH, stride: int = GRID_STRIDE, tile_patches: int = 8,
                    progress: Callable[[float], None] | None = None,
                    cancelled: Callable[[], bool] | None = None,
                    prefetch: bool = True, mask_glass: bool = True) -> tuple[dict[str, np.ndarray], HeatmapGeometry]:
    """Score every patch of ``slide`` (at ``level``, ``plane``) with each scorer.

    Returns ({name: (rows, cols) float32, NaN on glass unless ``mask_glass`` is False}, geometry). ``progress`` receives the
    fraction done; ``cancelled()`` returning True (or a cancelled scope of
    `engine.tiles.cancel` around the call) stops early with an InterruptedError. With
    ``prefetch`` a reader thread decodes the next block while this one is scored (the slide
    must allow reads from another thread, as every `Slide` does): reading and scoring each
    have a core (scoring runs torch on one thread, see `_torch_threads`).
    """
    geom = heatmap_geometry(slide, level, patch, stride)
    rows, cols = geom.shape
    out = {name: np.full((rows, cols), np.nan, np.float32) for name in scorers}
    todo = list(blocks(geom, tile_patches))
    total = max(len(todo), 1)
    # closing() stops the prefetching reader at once when scoring is cancelled or fails.
    with closing(_read_blocks(slide, geom, todo, plane, prefetch)) as reads:
        for done, (b, rgb) in enumerate(reads, 1):
            if (cancelled is not None and cancelled()) or cancel_requested():
                raise InterruptedError("heatmap cancelled")
            for name, s in score_pixels(rgb, b, scorers, patch, stride, mask_glass).items():
                out[name][b.r0:b.r1, b.c0:b.c1] = s
            if progress is not None:
                progress(done / total)
    return out, geom


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run torch's CPU ops from this thread on at most ``n`` threads meanwhile. A block's
    convolution is a few ms of work: with more threads, torch's OpenMP workers spin after it and
    take CPU from the decoding of the next block (measured: the scoring costs 3× more CPU and
    decoding slows by half on 2 cores). With torch's OpenMP backend the setting is per thread."""
    before = torch.get_num_threads()
    if n >= before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _read_blocks(slide: Slide, geom: HeatmapGeometry, todo: list[Block], plane: int,
                 prefetch: bool) -> Iterator[tuple[Block, np.ndarray]]:
    """(block, pixels) in order (`read_block`); with ``prefetch`` the next block is read in a
    thread meanwhile."""
    def read(b: Block) -> np.ndarray:
        return read_block(slide, geom, b, plane)

    if not prefetch or len(todo) < 2:
        for b in todo:
            yield b, read(b)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="heatmap-read") as pool:
        pending = pool.submit(read, todo[0])
        try:
            for i, b in enumerate(todo):
                rgb = pending.result()
                if i + 1 < len(todo):
                    pending = pool.submit(read, todo[i + 1])
                yield b, rgb
        finally:
            pending.cancel()
