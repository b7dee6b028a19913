"""`OmeZarrSlide`: an OME-Zarr (OME-NGFF 0.4 on Zarr v2, 0.5 on Zarr v3) image in a local
folder, read with zarr-python.

* **Which image**: the folder's ``multiscales`` (the first one); a bioformats2raw layout
  (``"bioformats2raw.layout"`` at the top) opens its series ``0``.
* **Levels**: the ``datasets`` of the multiscale, finest first; downsample = level-0 width /
  level width. Levels whose z or channel count differs from level 0 are left out (noted).
* **Focal planes**: every index of the ``z`` axis. z of plane ``i`` = ``translation_z +
  i × scale_z`` from level 0's ``coordinateTransformations`` (times the multiscale's own, if
  any), converted from the axis ``unit`` (micrometer, nanometer, millimeter...) to µm. Files
  written by FineFocus with uneven planes also carry the exact list in
  ``attributes["finefocus"]["planes_um"]``, which is used when its length matches.
* **µm per px**: ``scale_x``, ``scale_y`` of level 0 in µm. An axis without a ``unit`` is
  taken as micrometer (most writers mean it) and ``notes`` say so.
* **Channels**: three channels (``c`` axis) are R, G, B; one is grey; any other count shows
  the first channel (noted). Other non-spatial axes (``t``...) are read at index 0 (noted).
* **Pixels**: uint8 as stored; other dtypes through one `DisplayRange` for the whole slide:
  the ``omero`` window (start/end) of the first channel when the file gives one, else
  robust percentiles of a ≤ 2048 px window of the coarsest level of up to 8 planes.
* **Damage**: headers that do not parse, shapes beyond `MAX_SIDE_PX` per side or
  `MAX_PLANES` planes, and chunks so large that decoding one would exceed
  `MAX_SEGMENT_BYTES` are refused at open, before anything is allocated. A chunk missing
  from the folder is an error at the read that needs it (`CorruptSlideError` naming the chunk):
  FineFocus never paints the array's fill value where data may have been lost. (Zarr writers
  that skip chunks equal to the fill value make such files; FineFocus's writer never does.)

Coordinates are level-0 px; z is µm.
"""
from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import numpy as np

from . import display_range as dr
from .base import CorruptSlideError, Level, Slide, SlideError, UnsupportedSlideError
from .tiff_region import MAX_SEGMENT_BYTES, MAX_SIDE_PX

#: Most focal planes a slide may claim.
MAX_PLANES = 4096
#: µm in one unit, by NGFF unit name.
UNIT_UM = {"micrometer": 1.0, "micron": 1.0, "um": 1.0, "µm": 1.0, "nanometer": 1e-3, "nm": 1e-3,
           "millimeter": 1e3, "mm": 1e3, "centimeter": 1e4, "meter": 1e6, "m": 1e6,
           "angstrom": 1e-4, "picometer": 1e-6, "inch": 25400.0}
#: Long side of the coarsest-level window the display range is taken from, px.
RANGE_WINDOW_PX = 2048


def looks_like_zarr(folder: Path) -> bool:
    """True when ``folder`` holds Zarr group metadata (v2 ``.zgroup``/``.zattrs`` or v3
    ``zarr.json``)."""
    return any((folder / n).is_file() for n in ("zarr.json", ".zattrs", ".zgroup"))


class OmeZarrSlide(Slide):
    """``path``: a local OME-Zarr folder."""

    format = "ome-zarr"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._present: set[tuple] = set()
        self._closed = False
        try:
            self._open()
        except SlideError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
            raise CorruptSlideError(self.path, f"broken OME-Zarr metadata ({_short(exc)})") from exc

    # ------------------------------------------------------------------ metadata
    def _open(self) -> None:
        import zarr

        root_path = Path(self.path)
        group = self._group(zarr, root_path)
        attrs = group.attrs.asdict()
        if "bioformats2raw.layout" in _ome(attrs) and "multiscales" not in _ome(attrs):
            root_path = root_path / "0"
            group = self._group(zarr, root_path)
            attrs = group.attrs.asdict()
        ome = _ome(attrs)
        multiscales = ome.get("multiscales")
        if not multiscales:
            raise UnsupportedSlideError(self.path, "a Zarr group without OME-NGFF multiscales "
                                                   "metadata (not an OME-Zarr image)")
        ms = multiscales[0]
        version = str(ms.get("version", ome.get("version", "")))
        if version not in ("0.4", "0.5"):
            raise UnsupportedSlideError(self.path, f"OME-NGFF version {version or 'unstated'}; "
                                                   "FineFocus reads 0.4 and 0.5")
        axes = [a if isinstance(a, dict) else {"name": str(a)} for a in ms["axes"]]
        names = [str(a["name"]).lower() for a in axes]
        if "y" not in names or "x" not in names:
            raise UnsupportedSlideError(self.path, f"OME-Zarr axes {names} have no y and x")
        self._names = names
        notes: list[str] = []
        datasets = ms["datasets"]
        if not datasets:
            raise CorruptSlideError(self.path, "OME-Zarr multiscales lists no datasets")
        self._root = root_path
        arrays = []
        for ds in datasets:
            try:
                arr = group[str(ds["path"])]
            except KeyError as exc:
                raise CorruptSlideError(self.path, f"OME-Zarr level {ds['path']!r} is missing") from exc
            if not hasattr(arr, "shape") or arr.ndim != len(names):
                raise CorruptSlideError(self.path, f"OME-Zarr level {ds['path']!r} is not a "
                                                   f"{len(names)}-d array")
            self._check_array(arr, str(ds["path"]))
            arrays.append((str(ds["path"]), arr))
        base = arrays[0][1]
        iz = names.index("z") if "z" in names else None
        ic = _channel_axis(axes)
        n_z = int(base.shape[iz]) if iz is not None else 1
        if n_z > MAX_PLANES:
            raise CorruptSlideError(self.path, f"OME-Zarr claims {n_z} z planes, beyond the "
                                               f"{MAX_PLANES} plane limit")
        keep = [(p, a) for p, a in arrays
                if all(a.shape[i] == base.shape[i] for i in range(len(names)) if i != names.index("y")
                       and i != names.index("x"))]
        if len(keep) < len(arrays):
            notes.append(f"{len(arrays) - len(keep)} level(s) with other z or channel counts left out")
        self._arrays = [a for _, a in keep]
        self._paths = [p for p, _ in keep]
        iy, ix = names.index("y"), names.index("x")
        W, H = int(base.shape[ix]), int(base.shape[iy])
        self.levels = tuple(Level(int(a.shape[ix]), int(a.shape[iy]), W / int(a.shape[ix]))
                            for a in self._arrays)
        self._iy, self._ix, self._iz, self._ic = iy, ix, iz, ic

        # channels and other axes
        n_c = int(base.shape[ic]) if ic is not None else 1
        self._channels = [0, 1, 2] if n_c in (3, 4) else [0]
        if n_c == 4:
            notes.append("4 channels: the first three shown as R, G, B")
        elif n_c not in (1, 3):
            notes.append(f"{n_c} channels: the first shown")
        for i, n in enumerate(names):
            if i not in (iy, ix, iz, ic) and base.shape[i] > 1:
                notes.append(f"axis {n}: {base.shape[i]}, the first read")

        # physical scale
        scale, trans = _transforms(datasets[0], ms, len(names))
        units = [UNIT_UM.get(str(a.get("unit", "")).lower()) if a.get("unit") else None
                 for a in axes]
        unstated = [names[i] for i in (iz, iy, ix) if i is not None and not axes[i].get("unit")]
        if unstated:
            notes.append(f"axis unit not stated for {', '.join(unstated)}: scale taken as µm")
        bad = [names[i] for i in (iz, iy, ix) if i is not None and axes[i].get("unit")
               and units[i] is None]
        if bad:
            notes.append(f"axis unit of {', '.join(bad)} is not a length: µm assumed")

        def um(i, v):
            return float(v) * (units[i] if units[i] is not None else 1.0)

        ff = attrs.get("finefocus") or {}
        if iz is not None:
            zs = [um(iz, trans[iz] + k * scale[iz]) for k in range(n_z)]
            exact = ff.get("planes_um")
            if isinstance(exact, list) and len(exact) == n_z:
                zs = [float(z) for z in exact]
        else:
            zs = [0.0]
        zs = [round(z, 9) for z in zs]
        self._order = sorted(range(n_z), key=lambda k: zs[k])
        self.planes_um = tuple(zs[k] for k in self._order)
        if ff.get("mpp_known") is False:
            self.mpp = None
        else:
            mx, my = um(ix, scale[ix]), um(iy, scale[iy])
            self.mpp = (mx, my) if all(math.isfinite(m) and m > 0 for m in (mx, my)) else None

        # display window
        if dr.needs_window(base.dtype):
            window = _omero_window(ome.get("omero") or attrs.get("omero"))
            if window is None:
                window = self._window_from_data()
        else:
            window = dr.IDENTITY
        self._window = window
        self.display_range = None if window is dr.IDENTITY else (window.low, window.high)
        chunks = base.chunks
        self.tile_size = (max(64, min(1024, int(chunks[ix]))), max(64, min(1024, int(chunks[iy]))))
        self.notes = tuple(notes)
        props = {
            "ome-zarr.version": version,
            "ome-zarr.zarr_format": str(getattr(base.metadata, "zarr_format", "")),
            "ome-zarr.axes": ",".join(names),
            "ome-zarr.shape": "x".join(str(int(s)) for s in base.shape),
            "ome-zarr.chunks": "x".join(str(int(s)) for s in base.chunks),
            "ome-zarr.dtype": str(base.dtype),
            "ome-zarr.levels": ",".join(self._paths),
            "ome-zarr.scale": ",".join(f"{s:g}" for s in scale),
        }
        if ms.get("name"):
            props["ome-zarr.name"] = str(ms["name"])
        props.update(window.properties())
        self.properties = props

    def _group(self, zarr, path: Path):
        try:
            return zarr.open_group(str(path), mode="r")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptSlideError(self.path, f"Zarr metadata is not valid JSON ({_short(exc)})") from exc
        except Exception as exc:  # zarr raises its own error types for bad or absent metadata
            raise CorruptSlideError(self.path, f"cannot open the Zarr group ({_short(exc)})") from exc

    def _check_array(self, arr, name: str) -> None:
        names = self._names
        shape = tuple(int(s) for s in arr.shape)
        if any(s <= 0 for s in shape):
            raise CorruptSlideError(self.path, f"OME-Zarr level {name!r} has an empty shape {shape}")
        for ax in ("y", "x"):
            if shape[names.index(ax)] > MAX_SIDE_PX:
                raise CorruptSlideError(self.path, f"OME-Zarr level {name!r} claims {shape} px, "
                                                   f"beyond the {MAX_SIDE_PX} px limit per side")
        itemsize = np.dtype(arr.dtype).itemsize
        chunk = int(np.prod([int(c) for c in arr.chunks], dtype=np.int64)) * itemsize
        if chunk > MAX_SEGMENT_BYTES:
            raise UnsupportedSlideError(self.path, f"OME-Zarr level {name!r} stores {chunk >> 20} MB "
                                                   f"per chunk; decoding one would exceed the "
                                                   f"{MAX_SEGMENT_BYTES >> 20} MB limit")
        if np.dtype(arr.dtype).kind not in "uifb":
            raise UnsupportedSlideError(self.path, f"OME-Zarr level {name!r} holds {arr.dtype} samples")

    def _window_from_data(self) -> dr.DisplayRange:
        level = len(self._arrays) - 1
        lv = self.levels[level]
        w, h = min(lv.width, RANGE_WINDOW_PX), min(lv.height, RANGE_WINDOW_PX)
        x, y = (lv.width - w) // 2, (lv.height - h) // 2
        picks = dr.evenly_spaced(len(self.planes_um))
        views = [self._samples(level, x, y, w, h, p) for p in picks]
        return dr.from_samples(views, f"level {level} of {len(picks)} planes")

    # ------------------------------------------------------------------ pixels
    def _samples(self, level: int, lx: int, ly: int, w: int, h: int, plane: int) -> np.ndarray:
        """Raw samples (h, w, k) of the region, k = 1 or 3 channels."""
        if self._closed:
            raise SlideError(self.path, "slide is closed")
        arr = self._arrays[level]
        z = self._order[plane]
        idx = []
        for i in range(arr.ndim):
            if i == self._iy:
                idx.append(slice(ly, ly + h))
            elif i == self._ix:
                idx.append(slice(lx, lx + w))
            elif i == self._iz:
                idx.append(slice(z, z + 1))
            elif i == self._ic:
                idx.append(slice(self._channels[0], self._channels[-1] + 1))
            else:
                idx.append(slice(0, 1))
        self._check_chunks(level, idx)
        try:
            data = np.asarray(arr[tuple(idx)])
        except Exception as exc:  # codec errors come in many types
            raise CorruptSlideError(self.path, f"cannot decode OME-Zarr level {self._paths[level]!r} "
                                               f"({_short(exc)})") from exc
        # axes order -> (y, x, c)
        keep = [self._iy, self._ix] + ([self._ic] if self._ic is not None else [])
        drop = tuple(i for i in range(arr.ndim) if i not in keep)
        data = data.reshape([data.shape[i] for i in range(arr.ndim) if i not in drop])
        order = sorted(keep)
        data = data.transpose([order.index(i) for i in keep])
        return data if data.ndim == 3 else data[:, :, None]

    def _check_chunks(self, level: int, idx: list) -> None:
        """Every stored chunk (or shard) the region needs must exist in the folder."""
        arr = self._arrays[level]
        grid = getattr(arr, "shards", None) or arr.chunks
        ranges = []
        for sl, c in zip(idx, grid):
            ranges.append(range(sl.start // c, (sl.stop - 1) // c + 1))
        base = self._root / self._paths[level]
        for coords in np.ndindex(*[len(r) for r in ranges]):
            chunk = tuple(r[i] for r, i in zip(ranges, coords))
            key = (level, chunk)
            if key in self._present:
                continue
            name = arr.metadata.encode_chunk_key(chunk)
            if not os.path.exists(base / name):
                raise CorruptSlideError(self.path, f"OME-Zarr chunk {self._paths[level]}/{name} "
                                                   "is missing")
            with self._lock:
                self._present.add(key)

    def _read(self, level, lx, ly, w, h, plane):
        raw = self._samples(level, lx, ly, w, h, plane)
        pix = self._window.apply(raw)
        if pix.shape[2] == 1:
            return np.repeat(pix, 3, axis=2)
        return pix

    def close(self) -> None:
        self._closed = True


# ---------------------------------------------------------------------------- helpers
def _ome(attrs: dict) -> dict:
    """NGFF 0.5 nests its keys under ``"ome"``; 0.4 keeps them at the top."""
    inner = attrs.get("ome")
    return inner if isinstance(inner, dict) else attrs


def _channel_axis(axes: list[dict]) -> int | None:
    for i, a in enumerate(axes):
        if str(a.get("type", "")).lower() == "channel" or str(a["name"]).lower() == "c":
            return i
    return None


def _transforms(dataset: dict, ms: dict, n: int) -> tuple[list[float], list[float]]:
    """Level-0 (scale, translation) per axis: the dataset's transforms, then the multiscale's."""
    scale, trans = [1.0] * n, [0.0] * n
    for source in (dataset.get("coordinateTransformations") or [],
                   ms.get("coordinateTransformations") or []):
        for t in source:
            if t.get("type") == "scale" and "scale" in t:
                s = [float(v) for v in t["scale"]]
                if len(s) != n:
                    raise ValueError(f"a scale of {len(s)} values for {n} axes")
                scale = [a * b for a, b in zip(scale, s)]
                trans = [a * b for a, b in zip(trans, s)]
            elif t.get("type") == "translation" and "translation" in t:
                tr = [float(v) for v in t["translation"]]
                if len(tr) == n:
                    trans = [a + b for a, b in zip(trans, tr)]
    return scale, trans


def _omero_window(omero) -> dr.DisplayRange | None:
    try:
        win = omero["channels"][0]["window"]
        return dr.from_file(win.get("start"), win.get("end"), "the file's omero window (start/end)")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
