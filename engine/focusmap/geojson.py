"""A `FocusMap` as QuPath-importable GeoJSON, and back.

Writing: the painted cells are grouped by depth, quantised to ``step_um`` (default 0.05 µm: each
cell's focus rounded to the nearest multiple), and each depth becomes one Feature whose geometry
is the outline of its cells — a Polygon, or a MultiPolygon of several pieces, with holes —
traced along the cell edges in **level-0 px** (x right, y down, origin at the slide's top-left
corner, the cells at the right and bottom edges clipped to the slide), exterior rings
counter-clockwise in coordinate order and holes clockwise (RFC 7946); rings touch at most at a
corner. Unpainted cells belong to no feature. Each Feature's ``properties``:

* ``objectType: "annotation"`` — QuPath (0.4 and later) makes each Feature an annotation;
* ``classification: {"name": "Focus +1.25 µm", "color": [r, g, b]}`` — the class QuPath shows
  and colours by (blue below 0 µm, red above, white at 0; saturated at ±3 µm);
* ``focus_um`` — the depth in µm in the slide's z frame (positive = towards the objective), and
  the same value as ``measurements: {"focus_um": …}``, which QuPath keeps in its measurement
  table and writes back when it exports the annotations again (it drops unknown properties).

**Where the µm goes.** QuPath's ``plane`` (inside the geometry: ``{"c": -1, "z": k, "t": 0}``)
is an integer index of a captured plane, not a depth, so the depth is never stored there: it
lives in ``properties.focus_um`` (and ``measurements.focus_um``). Only when the slide's planes
are known (``planes_um``) does each geometry get ``plane.z`` = the index (into the slide's
planes, ascending z) of the captured plane nearest its depth, so QuPath shows the region on the
plane closest to where it should be in focus. Reading ignores ``plane``.

The FeatureCollection also carries a foreign member ``finefocus`` with the map's geometry
(``width`` × ``height`` level-0 px, ``stride`` px per cell, ``default_um``, ``step_um``, ``mpp``);
QuPath ignores it, we use it to refuse a file made for another slide.

Reading (`read_geojson`) takes a FineFocus file, or annotations exported by QuPath: a
FeatureCollection, a bare list of Features, or one Feature. Each Feature's depth is, in order,
``properties.focus_um``, ``properties.measurements.focus_um``, or a classification named like
``Focus +1.25 µm``; Features with none of these (other annotations) are skipped. Each cell takes
the depth of the Feature whose (even–odd) interior contains the centre of the cell's part inside
the slide; a later Feature overrides an earlier one where they overlap. A map written here reads
back with exactly the same painted cells, each within ``step_um / 2`` of its value (exactly,
where the values were already multiples of the step).

Hostile files are refused with one line naming the file and the reason, in bounded time and
memory: the file size (`MAX_GEOJSON_BYTES`) is checked before it is read, and the count of JSON
arrays, objects and values is checked on the raw bytes before it is parsed (so 5 million
vertices are refused without building 5 million Python lists); then the number of Features
(`MAX_FEATURES`), vertices (`MAX_VERTICES`), types, finiteness (no NaN / Infinity), coordinates
within one slide size of the slide, depths within ±`MAX_ABS_FOCUS_UM`, and the rasterising work
(`MAX_CROSSINGS` edge–row crossings, a bounded number of filled cells). Writing refuses a map that
would exceed these limits, so every file written here reads back.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from ._files import atomic_write_bytes, read_limited
from .focus_map import DEFAULT_STRIDE, FocusMap, FocusMapError

__all__ = ["GEOJSON_STEP_UM", "MAX_GEOJSON_BYTES", "MAX_VERTICES", "MAX_FEATURES", "MAX_ABS_FOCUS_UM",
           "MAX_CROSSINGS", "GeoJSONSummary", "to_geojson", "write_geojson", "read_geojson",
           "focus_class_name", "focus_colour"]

#: Default depth quantisation of a written file (µm).
GEOJSON_STEP_UM = 0.05
#: Largest file read (bytes).
MAX_GEOJSON_BYTES = 64 * 2**20
#: Most vertices (positions) in a file; checked as the number of JSON arrays before parsing.
MAX_VERTICES = 1_000_000
#: Most Features in a file.
MAX_FEATURES = 20_000
#: Largest |depth| accepted (µm): a millimetre off focus is not a focus.
MAX_ABS_FOCUS_UM = 1000.0
#: Most crossings of polygon edges with rows of cell centres while rasterising.
MAX_CROSSINGS = 20_000_000
_FORMAT = "finefocus-focus-map-geojson-1"
_MAX_STRIDE = 4096
_CLASS_RE = re.compile(r"focus\s*([+\-\u2212]?\s*\d+(?:\.\d*)?)\s*(?:µm|\u03bcm|um)", re.IGNORECASE)


@dataclass(frozen=True)
class GeoJSONSummary:
    """What `write_geojson` wrote: one Feature per depth, their vertex count, the step (µm)."""

    path: Path
    features: int
    vertices: int
    step_um: float


# ---------------------------------------------------------------------------- naming and colour
def _decimals(step_um: float) -> int:
    return max(2, min(6, math.ceil(-math.log10(step_um) - 1e-9)))


def focus_class_name(z_um: float, step_um: float = GEOJSON_STEP_UM) -> str:
    """The QuPath class of a depth: ``"Focus +1.25 µm"`` (as many decimals as the step needs)."""
    z = round(float(z_um), _decimals(step_um))
    return f"Focus {0.0 if z == 0 else z:+.{_decimals(step_um)}f} µm"


def focus_colour(z_um: float) -> list[int]:
    """RGB of a depth: white at 0 µm, toward blue below and red above, saturated at ±3 µm."""
    t = max(-1.0, min(1.0, float(z_um) / 3.0))
    far = (200, 30, 30) if t > 0 else (30, 60, 220)
    a = abs(t)
    return [int(round(255 + a * (c - 255))) for c in far]


# ---------------------------------------------------------------------------- tracing
class _TooDetailed(Exception):
    """The outlines would need more vertices than a file may hold (args: a lower bound)."""


#: Most unit cell edges traced for one export (bounds its memory: ~80 bytes each).
MAX_TRACED_EDGES = 16_000_000


def _trace(labels: np.ndarray, max_vertices: int = MAX_VERTICES) -> dict[int, list[tuple[np.ndarray, list[np.ndarray]]]]:
    """Outlines of the regions of equal label (>= 0; -1 = none) of a grid, in cell units:
    {label: [(shell (k, 2) int, [holes]), ...]}, rings closed (first point repeated), only the
    corners kept, shells counter-clockwise in coordinate order, holes clockwise; regions that
    meet only at a corner are separate polygons, and a ring touching itself is split there."""
    R, C = labels.shape
    NV = (R + 1) * (C + 1)
    lab, x0, y0, x1, y1 = [], [], [], [], []

    def add(lb, ax, ay, bx, by):
        keep = lb >= 0
        lab.append(lb[keep]); x0.append(ax[keep]); y0.append(ay[keep]); x1.append(bx[keep]); y1.append(by[keep])

    # The region is kept on the left of travel (x right, y down read as a plain x–y plane).
    lh = np.pad(labels, ((0, 0), (1, 1)), constant_values=-1)
    left, right = lh[:, :-1], lh[:, 1:]                       # (R, C+1): the cells either side of x = c
    lv = np.pad(labels, ((1, 1), (0, 0)), constant_values=-1)
    above, below = lv[:-1], lv[1:]                            # (R+1, C): the cells either side of y = r
    n_edges = 2 * (int(np.count_nonzero(left != right)) + int(np.count_nonzero(above != below)))
    if n_edges > MAX_TRACED_EDGES:
        raise _TooDetailed(n_edges // 4)
    r, c = np.nonzero(left != right)
    add(left[r, c], c, r, c, r + 1)                     # region on the left: travel +y
    add(right[r, c], c, r + 1, c, r)                    # region on the right: travel −y
    r, c = np.nonzero(above != below)
    add(below[r, c], c, r, c + 1, r)                    # region at larger y: travel +x
    add(above[r, c], c + 1, r, c, r)                    # region at smaller y: travel −x
    lab, x0, y0, x1, y1 = (np.concatenate(a).astype(np.int64) for a in (lab, x0, y0, x1, y1))
    n = lab.size
    if n == 0:
        return {}
    dx, dy = x1 - x0, y1 - y0
    key_s = lab * NV + y0 * (C + 1) + x0
    key_e = lab * NV + y1 * (C + 1) + x1
    order = np.argsort(key_s, kind="stable")
    ks = key_s[order]
    idx = np.searchsorted(ks, key_e)
    cand1 = order[idx]
    idx2 = np.minimum(idx + 1, n - 1)
    cand2 = order[idx2]
    has2 = (idx + 1 < n) & (ks[idx2] == key_e)
    # At a corner where the region holds two diagonal cells, turn left: around the cell just
    # followed, so cells meeting only at a corner stay apart.
    left_is_2 = (dx[cand2] == -dy) & (dy[cand2] == dx)
    nxt = np.where(has2 & left_is_2, cand2, cand1)
    corners = int(np.count_nonzero((dx[nxt] != dx) | (dy[nxt] != dy)))
    if corners > max_vertices:
        raise _TooDetailed(corners)

    nxt_l = nxt.tolist()
    sv_l = (y0 * (C + 1) + x0).tolist()
    lab_l = lab.tolist()
    visited = bytearray(n)
    walks: list[tuple[int, list[int]]] = []
    for e0 in range(n):
        if visited[e0]:
            continue
        path: list[int] = []
        pos: dict[int, int] = {}
        e = e0
        while True:
            visited[e] = 1
            v = sv_l[e]
            i = pos.get(v)
            if i is not None:                                   # back at a corner: split the loop off
                loop = path[i:]
                for u in loop:
                    del pos[u]
                del path[i:]
                walks.append((lab_l[e0], loop))
            pos[v] = len(path)
            path.append(v)
            e = nxt_l[e]
            if e == e0:
                break
        walks.append((lab_l[e0], path))

    shells: dict[int, list] = {}
    holes: dict[int, list] = {}
    for label, verts in walks:
        v = np.asarray(verts, np.int64)
        pts = np.stack([v % (C + 1), v // (C + 1)], axis=1)
        # the region's cell on the left of the first edge (for hole assignment)
        (ax, ay), (bx, by) = pts[0], pts[1 % len(pts)]
        ddx, ddy = bx - ax, by - ay
        cell = {(1, 0): (ay, ax), (-1, 0): (ay - 1, bx), (0, 1): (ay, ax - 1), (0, -1): (by, ax)}[(int(ddx), int(ddy))]
        prev, nxt_p = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
        turn = (pts[:, 0] - prev[:, 0]) * (nxt_p[:, 1] - pts[:, 1]) - (pts[:, 1] - prev[:, 1]) * (nxt_p[:, 0] - pts[:, 0])
        pts = pts[turn != 0]
        area2 = int(np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1]))
        ring = np.vstack([pts, pts[:1]])
        (shells if area2 > 0 else holes).setdefault(label, []).append((ring, cell))

    out: dict[int, list[tuple[np.ndarray, list[np.ndarray]]]] = {}
    for label, sh in shells.items():
        polys = [(ring, []) for ring, _ in sh]
        hl = holes.get(label, [])
        if hl and len(sh) == 1:
            polys[0][1].extend(ring for ring, _ in hl)
        elif hl:
            allpts = np.vstack([ring for ring, _ in sh])
            cx0, cy0 = allpts.min(axis=0)
            cx1, cy1 = allpts.max(axis=0)
            comp, _ = ndimage.label(labels[cy0:cy1, cx0:cx1] == label)
            owner = {}
            for k, (ring, cell) in enumerate(sh):
                owner.setdefault(int(comp[cell[0] - cy0, cell[1] - cx0]), []).append(k)
            for ring, cell in hl:
                cands = owner.get(int(comp[cell[0] - cy0, cell[1] - cx0]), [])
                if len(cands) > 1:       # not expected; fall back to the shell holding the cell centre
                    p = (cell[1] + 0.5, cell[0] + 0.5)
                    cands = [k for k in cands if _inside(sh[k][0], p)] or cands
                if cands:
                    polys[cands[0]][1].append(ring)
        out[label] = polys
    return out


def _inside(ring: np.ndarray, p: tuple[float, float]) -> bool:
    x, y = p
    a, b = ring[:-1].astype(float), ring[1:].astype(float)
    cross = (a[:, 1] > y) != (b[:, 1] > y)
    xs = a[cross, 0] + (y - a[cross, 1]) * (b[cross, 0] - a[cross, 0]) / (b[cross, 1] - a[cross, 1])
    return bool(np.count_nonzero(xs > x) % 2)


# ---------------------------------------------------------------------------- writing
def to_geojson(fm: FocusMap, *, step_um: float = GEOJSON_STEP_UM, planes_um: Sequence[float] | None = None,
               mpp: Sequence[float] | None = None) -> dict:
    """The map as a GeoJSON FeatureCollection (a dict; see the module docstring): one Feature
    per depth, quantised to ``step_um`` µm; with ``planes_um`` (the slide's captured planes, µm)
    each geometry names its nearest plane in ``plane.z``. Raises `FocusMapError` when the result
    would exceed the reading limits (write a TIFF instead, or use a coarser step)."""
    if not (isinstance(step_um, (int, float)) and math.isfinite(step_um) and 1e-6 <= step_um <= 100):
        raise FocusMapError(f"the depth step must be between 1e-6 and 100 µm, got {step_um}")
    vals = fm.values
    painted = np.isfinite(vals)
    if np.any(np.abs(vals[painted]) > MAX_ABS_FOCUS_UM):
        raise FocusMapError(f"the map holds depths beyond ±{MAX_ABS_FOCUS_UM:g} µm")
    q = np.zeros(vals.shape, np.int64)
    q[painted] = np.rint(vals[painted].astype(np.float64) / step_um).astype(np.int64)
    levels, inverse = np.unique(q[painted], return_inverse=True)
    labels = np.full(vals.shape, -1, np.int64)
    labels[painted] = inverse
    if levels.size > MAX_FEATURES:
        raise FocusMapError(f"{levels.size:,} depths at a {step_um:g} µm step are more than a GeoJSON file "
                            f"holds ({MAX_FEATURES:,}); use a coarser step or a TIFF")
    try:
        polys = _trace(labels)
    except _TooDetailed as exc:
        raise FocusMapError(f"the outlines need more than {exc.args[0]:,} vertices at a {step_um:g} µm step, "
                            f"more than a GeoJSON file holds ({MAX_VERTICES:,}); use a coarser step or a TIFF") from None
    W, H, s = fm.width, fm.height, fm.stride
    dec = _decimals(step_um)
    planes = None if planes_um is None else np.asarray(planes_um, np.float64)
    features, vertices = [], 0
    for k in sorted(polys):
        z = round(float(levels[k]) * step_um, dec)
        z = 0.0 if z == 0 else z
        coords = []
        for shell, hs in polys[k]:
            rings = []
            for ring in [shell, *hs]:
                px = np.minimum(ring[:, 0] * s, W)
                py = np.minimum(ring[:, 1] * s, H)
                rings.append(np.stack([px, py], axis=1).tolist())
                vertices += len(ring)
            coords.append(rings)
        geometry = ({"type": "Polygon", "coordinates": coords[0]} if len(coords) == 1
                    else {"type": "MultiPolygon", "coordinates": coords})
        if planes is not None and planes.size:
            geometry["plane"] = {"c": -1, "z": int(np.argmin(np.abs(planes - z))), "t": 0}
        name = focus_class_name(z, step_um)
        features.append({
            "type": "Feature",
            "geometry": geometry,
            "properties": {"objectType": "annotation",
                           "classification": {"name": name, "color": focus_colour(z)},
                           "focus_um": z, "measurements": {"focus_um": z}},
        })
    if vertices > MAX_VERTICES:
        raise FocusMapError(f"the outlines need {vertices:,} vertices at a {step_um:g} µm step, more than a "
                            f"GeoJSON file holds ({MAX_VERTICES:,}); use a coarser step or a TIFF")
    return {
        "type": "FeatureCollection",
        "finefocus": {"format": _FORMAT, "width": W, "height": H, "stride": s,
                      "default_um": float(fm.default_um), "step_um": float(step_um),
                      "mpp": [float(m) for m in mpp] if mpp else None,
                      "units": "coordinates in level-0 px; focus_um in µm"},
        "features": features,
    }


def write_geojson(fm: FocusMap, path: str | os.PathLike, **kwargs) -> GeoJSONSummary:
    """Write `to_geojson` (same keywords) to ``path`` atomically (a ``.part`` file renamed);
    `FocusMapError` naming ``path`` when the map cannot be written as GeoJSON."""
    try:
        doc = to_geojson(fm, **kwargs)
    except FocusMapError as exc:
        raise FocusMapError(f"{path}: {exc}") from None
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    if len(data) > MAX_GEOJSON_BYTES:
        raise FocusMapError(f"{path}: the GeoJSON would be {len(data) / 2**20:.0f} MiB, more than is read back "
                            f"({MAX_GEOJSON_BYTES / 2**20:.0f} MiB); use a coarser step or a TIFF")
    atomic_write_bytes(path, data)
    nv = sum(len(r) for f in doc["features"] for p in _polygons(f["geometry"]) for r in p)
    return GeoJSONSummary(Path(path), len(doc["features"]), nv, float(kwargs.get("step_um", GEOJSON_STEP_UM)))


def _polygons(geometry: dict):
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


# ---------------------------------------------------------------------------- reading
class _Bad(Exception):
    """A reason a file is refused (prefixed with the file's name by `read_geojson`)."""


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"{what} must be a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise _Bad(f"{what} must be finite, got {v}")
    return f


def _focus_of(props: dict, where: str) -> float | None:
    """The depth (µm) a Feature's properties give, or None when it is not a focus region."""
    z = None
    if "focus_um" in props:
        z = _number(props["focus_um"], f"{where}: properties.focus_um")
    else:
        m = props.get("measurements")
        if isinstance(m, dict) and "focus_um" in m:
            z = _number(m["focus_um"], f"{where}: measurements.focus_um")
        elif isinstance(m, list):       # QuPath before 0.4: [{"name": …, "value": …}]
            for item in m:
                if isinstance(item, dict) and item.get("name") == "focus_um":
                    z = _number(item.get("value"), f"{where}: measurements.focus_um")
                    break
        if z is None:
            cls = props.get("classification")
            name = cls.get("name") if isinstance(cls, dict) else cls if isinstance(cls, str) else None
            match = _CLASS_RE.search(name) if isinstance(name, str) else None
            if match:
                z = float(match.group(1).replace("\u2212", "-").replace(" ", ""))
    if z is not None and abs(z) > MAX_ABS_FOCUS_UM:
        raise _Bad(f"{where}: a focus of {z:g} µm is beyond ±{MAX_ABS_FOCUS_UM:g} µm")
    return z


def _rings_of(geometry, where: str, size: tuple[int, int]) -> list[np.ndarray]:
    if not isinstance(geometry, dict):
        raise _Bad(f"{where}: geometry must be an object, got {type(geometry).__name__}")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list):
            raise _Bad(f"{where}: MultiPolygon coordinates must be a list")
        polygons = coords
    else:
        raise _Bad(f"{where}: a focus region must be a Polygon or MultiPolygon, got {kind!r}")
    W, H = size
    rings = []
    for poly in polygons:
        if not isinstance(poly, list) or not poly:
            raise _Bad(f"{where}: a polygon must be a non-empty list of rings")
        for ring in poly:
            if not isinstance(ring, list):
                raise _Bad(f"{where}: a ring must be a list of [x, y] positions")
            try:
                a = np.asarray(ring)
            except (ValueError, TypeError):
                raise _Bad(f"{where}: a ring's positions are not all [x, y] numbers") from None
            if a.ndim != 2 or a.shape[1] not in (2, 3) or a.dtype.kind not in "iuf" or a.shape[0] < 3:
                raise _Bad(f"{where}: a ring must be at least 3 [x, y] number positions")
            a = a[:, :2].astype(np.float64)
            if not np.isfinite(a).all():
                raise _Bad(f"{where}: a coordinate is not finite")
            bad = (a[:, 0] < -W) | (a[:, 0] > 2 * W) | (a[:, 1] < -H) | (a[:, 1] > 2 * H)
            if bad.any():
                x, y = a[np.argmax(bad)]
                raise _Bad(f"{where}: coordinate ({x:g}, {y:g}) px lies far outside the {W} × {H} px slide")
            if not np.array_equal(a[0], a[-1]):
                a = np.vstack([a, a[:1]])
            rings.append(a)
    return rings


class _Raster:
    """Paints Features into a cell grid (even–odd inside each Feature, a later Feature over an
    earlier one), a batch of Features at a time, vectorised, within a budget of crossings and
    filled cells so that neither the time nor the memory depends on how hostile the file is."""

    BATCH_EDGES = 500_000           # edges gathered before a batch is painted
    CHUNK_CELLS = 4_000_000         # filled cells painted at once

    def __init__(self, fm: FocusMap):
        self.fm = fm
        W, H, s = fm.width, fm.height, fm.stride
        rows, cols = fm.shape
        # centres of each cell's part inside the slide, level-0 px
        self.xc = (np.arange(cols) * s + np.minimum((np.arange(cols) + 1) * s, W)) / 2.0
        self.yc = (np.arange(rows) * s + np.minimum((np.arange(rows) + 1) * s, H)) / 2.0
        self.crossings = 0
        self.filled = 0
        self.max_filled = 4 * rows * cols + 1_000_000
        self._edges: list[np.ndarray] = []
        self._fids: list[np.ndarray] = []
        self._z: list[float] = []
        self._where: list[str] = []
        self._pending = 0

    def add(self, rings: list[np.ndarray], z: float, where: str) -> None:
        e = np.vstack([np.hstack([r[:-1], r[1:]]) for r in rings])     # (m, 4): x0 y0 x1 y1
        e = e[e[:, 1] != e[:, 3]]                                       # rows are crossed by the others
        self._edges.append(e)
        self._fids.append(np.full(len(e), len(self._z), np.int64))
        self._z.append(z)
        self._where.append(where)
        self._pending += len(e)
        if self._pending >= self.BATCH_EDGES:
            self.flush()

    def flush(self) -> None:
        if not self._z:
            return
        e, fid = np.vstack(self._edges), np.concatenate(self._fids)
        z, where = np.asarray(self._z, np.float32), self._where
        self._edges, self._fids, self._z, self._where, self._pending = [], [], [], [], 0
        if not len(e):
            return
        x0, y0, x1, y1 = e.T
        lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
        ra = np.searchsorted(self.yc, lo, "left")
        rb = np.searchsorted(self.yc, hi, "left")
        cnt = rb - ra
        k = int(cnt.sum())
        self.crossings += k
        if self.crossings > MAX_CROSSINGS:
            raise _Bad(f"the outlines cross more than {MAX_CROSSINGS:,} rows of cells in all")
        if k == 0:
            return
        ei = np.repeat(np.arange(len(e)), cnt)
        first = np.cumsum(cnt) - cnt
        rows = ra[ei] + (np.arange(k) - first[ei])
        t = (self.yc[rows] - y0[ei]) / (y1[ei] - y0[ei])
        xs = x0[ei] + t * (x1[ei] - x0[ei])
        f = fid[ei]
        del ei, first, t
        order = np.lexsort((xs, rows, f))
        rows, xs, f = rows[order], xs[order], f[order]
        key = f * self.yc.size + rows
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        odd = np.flatnonzero(np.diff(np.r_[starts, key.size]) & 1)
        if odd.size:
            raise _Bad(f"{where[int(f[starts[odd[0]]])]}: a ring does not close")
        ja = np.searchsorted(self.xc, xs[0::2], "left")
        jb = np.searchsorted(self.xc, xs[1::2], "left")
        row, sf = rows[0::2], f[0::2]
        lengths = jb - ja
        total = int(lengths.sum())
        self.filled += total
        if self.filled > self.max_filled:
            raise _Bad(f"the regions overlap too much (more than {self.max_filled:,} cells filled)")
        cols = self.xc.size
        span_start = row * cols + ja
        ends = np.cumsum(lengths)
        flat_values = self.fm.values.reshape(-1)
        i0 = 0
        while i0 < lengths.size:           # spans in Feature order, a bounded number of cells at a time
            base = ends[i0] - lengths[i0]
            i1 = int(np.searchsorted(ends, base + self.CHUNK_CELLS, "right"))
            i1 = max(i1, i0 + 1)
            ln = lengths[i0:i1]
            n = int(ln.sum())
            if n:
                offs = np.cumsum(ln) - ln
                flat = np.repeat(span_start[i0:i1] - offs, ln) + np.arange(n)
                zc = np.repeat(z[sf[i0:i1]], ln)
                o = np.argsort(flat, kind="stable")            # equal cells keep Feature order…
                flat, zc = flat[o], zc[o]
                last = np.r_[flat[1:] != flat[:-1], True]       # …and the last Feature wins
                flat_values[flat[last]] = zc[last]
            i0 = i1


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def read_geojson(path: str | os.PathLike, size: Sequence[int], *, stride: int | None = None,
                 default_um: float | None = None) -> FocusMap:
    """A `FocusMap` for a ``size`` = (width, height) level-0 px slide from a GeoJSON file (see
    the module docstring). ``stride`` (level-0 px per cell) and ``default_um`` (µm) default to
    the file's ``finefocus`` member, else `DEFAULT_STRIDE` and 0 µm. Raises `FocusMapError`
    (one line naming the file and the reason) for anything it cannot take."""
    path = Path(path)
    W, H = int(size[0]), int(size[1])
    data = read_limited(path, MAX_GEOJSON_BYTES, "GeoJSON focus map")
    try:
        return _read(data, (W, H), stride, default_um)
    except _Bad as exc:
        raise FocusMapError(f"{path}: {exc}") from None


def _read(data: bytes, size: tuple[int, int], stride, default_um) -> FocusMap:
    W, H = size
    # Structural limits on the raw bytes, before a single Python object is built.
    if data.count(b"[") > MAX_VERTICES + 4 * MAX_FEATURES:
        raise _Bad(f"more than {MAX_VERTICES:,} vertices (refused before parsing)")
    if data.count(b"{") > 8 * MAX_FEATURES + 16:
        raise _Bad(f"more than {MAX_FEATURES:,} features (refused before parsing)")
    if data.count(b",") > 3 * MAX_VERTICES + 32 * MAX_FEATURES:
        raise _Bad("too many values for a focus map (refused before parsing)")
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise _Bad("not a GeoJSON file (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Bad(f"not valid JSON ({str(exc).splitlines()[0]})") from None
    meta = None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        meta = doc.get("finefocus")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    elif isinstance(doc, list):
        features = doc
    else:
        raise _Bad("not a GeoJSON FeatureCollection, Feature or list of Features")
    if not isinstance(features, list):
        raise _Bad("'features' must be a list")
    if len(features) > MAX_FEATURES:
        raise _Bad(f"{len(features):,} features are more than {MAX_FEATURES:,}")
    if meta is not None:
        if not isinstance(meta, dict):
            raise _Bad("the 'finefocus' member must be an object")
        mw, mh = meta.get("width"), meta.get("height")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (mw, mh)):
            raise _Bad("finefocus.width and .height must be positive integers (level-0 px)")
        if (mw, mh) != (W, H):
            raise _Bad(f"made for a {mw} × {mh} px slide, this one is {W} × {H} px")
        if stride is None and "stride" in meta:
            stride = meta["stride"]
            if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= _MAX_STRIDE:
                raise _Bad(f"finefocus.stride must be an integer from 1 to {_MAX_STRIDE} px")
        if default_um is None and meta.get("default_um") is not None:
            default_um = _number(meta["default_um"], "finefocus.default_um")
            if abs(default_um) > MAX_ABS_FOCUS_UM:
                raise _Bad(f"finefocus.default_um {default_um:g} µm is beyond ±{MAX_ABS_FOCUS_UM:g} µm")
    fm = FocusMap(W, H, 0.0 if default_um is None else float(default_um),
                  DEFAULT_STRIDE if stride is None else int(stride))
    raster = _Raster(fm)
    used = vertices = 0
    for i, feat in enumerate(features):
        where = f"feature {i}"
        if not isinstance(feat, dict):
            raise _Bad(f"{where}: must be an object, got {type(feat).__name__}")
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            raise _Bad(f"{where}: properties must be an object")
        z = _focus_of(props, where)
        if z is None:
            continue
        rings = _rings_of(feat.get("geometry"), where, (W, H))
        vertices += sum(len(r) for r in rings)
        if vertices > MAX_VERTICES:
            raise _Bad(f"more than {MAX_VERTICES:,} vertices")
        raster.add(rings, z, where)
        used += 1
    raster.flush()
    if not used and meta is None:        # (a FineFocus file of an unpainted map is empty by right)
        raise _Bad("no focus regions (a Feature with properties.focus_um or a 'Focus … µm' classification)")
    return fm
