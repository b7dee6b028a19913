"""What a QC batch writes into its output folder, and how a resumed batch finds finished slides.

Layout of ``DIR``::

    qc.tsv                    one row per slide (`COLUMNS`), in discovery order
    report.html               the static report (`engine.qc.report`)
    slides/<id>/              one folder per slide, <id> = file name + 8 hex of its absolute path
        focus.npy             FocusLiteNN raw score, (rows, cols) float32, NaN on glass
        defocus_um.npy        estimated defocus in µm (same grid)
        fused.npy             fused IQA score 0–1 (higher = blurrier); uncertainty.npy its s.d.
        depth_um.npy          best-focus z in µm (multi-plane slides only)
        geometry.json         the grid: patch, stride (px of level 0), origin, shape, planes_um
        thumb.png             thumbnail of the plane nearest z = 0
        defocus.png, fused.png, depth.png   overlays on the thumbnail, with legends
        overlay.png           the defocus overlay without legend (the report's picture)
        done.json             the row, written last and atomically: the slide is finished

A slide is skipped on a later run when its ``done.json`` exists, names the same file size and
modification time and the same `QcConfig.digest`. Slides that failed leave no marker, so they
are tried again.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .finish import SlideResult
from .overlay import overlay, scale_for
from .plan import file_stamp

COLUMNS = ("path", "format", "size_px", "planes", "mpp", "tissue_mm2", "tissue_patches", "oof_fraction",
           "median_defocus_um", "p90_defocus_um", "verdict", "note", "error", "id")
MARKER = "done.json"
REPORT_PICTURE = "overlay.png"
OVERLAYS = {"defocus_um": "defocus.png", "fused": "fused.png", "depth_um": "depth.png"}


def slide_id(path: str | os.PathLike) -> str:
    """A folder name for a slide: its file name (made safe) and 8 hex digits of its absolute path."""
    p = Path(path)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in p.name)[:80]
    return f"{safe}-{hashlib.sha1(str(p.absolute()).encode()).hexdigest()[:8]}"


def slide_dir(out: Path, path: str | os.PathLike) -> Path:
    return out / "slides" / slide_id(path)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _num(v: float | None, digits: int = 4) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def result_row(res: SlideResult) -> dict:
    """The TSV row of a finished slide (strings, empty where unknown)."""
    p, s = res.plan, res.summary
    return {"path": p.path, "format": p.format, "size_px": f"{p.width}x{p.height}", "planes": str(len(p.planes_um)),
            "mpp": _num(p.mpp[0] if p.mpp else None), "tissue_mm2": _num(res.tissue_mm2),
            "tissue_patches": str(s.tissue_patches), "oof_fraction": _num(s.oof_fraction),
            "median_defocus_um": _num(s.median_defocus_um, 3), "p90_defocus_um": _num(s.p90_defocus_um, 3),
            "verdict": s.verdict, "note": "; ".join(res.notes), "error": "", "id": slide_id(p.path)}


def error_row(path: str, error: str) -> dict:
    """The TSV row of a slide that could not be checked: ``error`` in one line."""
    row = {c: "" for c in COLUMNS}
    row.update(path=str(path), verdict="error", error=" ".join(str(error).split()), id=slide_id(path))
    return row


def write_result(out: Path, res: SlideResult, config_digest: str) -> dict:
    """Write one slide's files (module docstring), the marker last; returns its row."""
    d = slide_dir(out, res.plan.path)
    d.mkdir(parents=True, exist_ok=True)
    for name, grid in res.grids.items():
        buf = _npy_bytes(grid)
        _atomic_write(d / f"{name}.npy", buf)
    geom = {**res.plan.geometry.as_dict(), "planes_um": list(res.plan.planes_um), "plane": res.plan.plane,
            "units": {"patch": "px of level", "stride": "px of level", "origin": "level-0 px",
                      "defocus_um": "µm", "depth_um": "µm"},
            "fusion_weights": res.fusion_weights}
    _atomic_write(d / "geometry.json", json.dumps(geom, indent=1).encode())
    _atomic_write(d / "thumb.png", _png_bytes(res.thumbnail))
    size = (res.plan.width, res.plan.height)
    for kind, fname in OVERLAYS.items():
        if kind in res.grids:
            vmin, vmax, cmap, label = scale_for(kind, res.plan.planes_um)
            pic = overlay(res.thumbnail, res.grids[kind], res.plan.geometry, size, vmin, vmax, cmap, label)
            _atomic_write(d / fname, _png_bytes(pic))
            if kind == "defocus_um":
                bare = overlay(res.thumbnail, res.grids[kind], res.plan.geometry, size, vmin, vmax, cmap, None)
                _atomic_write(d / REPORT_PICTURE, _png_bytes(bare))
    row = result_row(res)
    marker = {"row": row, "stamp": list(res.plan.stamp), "config": config_digest}
    _atomic_write(d / MARKER, json.dumps(marker, indent=1).encode())
    return row


def finished_row(out: Path, path: str, config_digest: str) -> dict | None:
    """The row of ``path`` if a previous run finished it with the same file and settings, else None."""
    m = slide_dir(out, path) / MARKER
    try:
        doc = json.loads(m.read_text())
        stamp = list(file_stamp(path))
    except (OSError, ValueError):
        return None
    if doc.get("stamp") != stamp or doc.get("config") != config_digest:
        return None
    row = doc.get("row")
    return row if isinstance(row, dict) and row.get("path") == str(path) else None


def write_tsv(out: Path, rows: list[dict]) -> Path:
    """``qc.tsv`` with `COLUMNS` (tabs and newlines inside values become spaces)."""
    lines = ["\t".join(COLUMNS)]
    for r in rows:
        lines.append("\t".join(" ".join(str(r.get(c, "")).split()) for c in COLUMNS))
    path = out / "qc.tsv"
    _atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path


def read_tsv(path: Path) -> list[dict]:
    lines = Path(path).read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, ln.split("\t"))) for ln in lines[1:]]


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(a))
    return buf.getvalue()


def _png_bytes(rgb: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()
