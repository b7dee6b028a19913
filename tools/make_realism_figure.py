"""Write docs/realism.png (phantom tiles at three focus depths beside real tiles, same scale)
and docs/realism_report.json (the realism table of ``finefocus phantom realism``).

Every tile is 256 × 256 px at 0.5 µm/px (128 µm square), the comparison scale of the realism
report (engine/phantom/realism_references.py): the phantom is rendered at 0.25 µm/px by
``PhantomSlide.truth`` at focus −2, 0 and +2 µm and box-averaged 2×2; the real images are
shown at their native ≈ 0.5 µm/px. A 20 µm scale bar sits in each tile.

Rows: the H&E phantom at three depths beside a real H&E tile; the IHC phantom at the same
three depths beside the real IHC tile; further real H&E tiles.

    .venv/bin/python tools/make_realism_figure.py [--seed 0] [--out docs/realism.png]
                                                   [--report docs/realism_report.json | --no-report]
                                                   [--tissue-version 1|2]

``--tissue-version 2`` shows phantom tissue model version 2 (default 1, what the shipped models
were trained on); ``--tissue-version 1 2`` puts both versions' rows in one figure (H&E and IHC
of version 1, then of version 2) and writes one report per version (``_v2`` before the
report's suffix for version 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.phantom import realism_measures as M  # noqa: E402
from engine.phantom import realism_references as R  # noqa: E402
from engine.slides.array import box_downsample2  # noqa: E402

TILE = R.PATCH_PX
FOCI_UM = (-2.0, 0.0, 2.0)
REAL = ("cmu-1-small-region.svs", "tcga-lung-rgb.png",
        "tissue-level0-7352-11762-7864-12274.png", "ihc.png")
LABEL_H = 18
PAD = 4


def phantom_window(slide, size_px: int) -> tuple[int, int]:
    """Level-0 origin of a representative 2·TILE window on a 6×6 grid of the slide, judged on
    the pyramid level nearest 2 µm/px (cheap to render): mostly tissue (≥ 70 %), and among
    those the one richest in haematoxylin (nuclei, epithelium) beside stroma, so the figure
    shows cells as well as collagen; the most tissue-filled window when none qualifies."""
    win = 2 * TILE
    level = slide.best_level_for_downsample(8.0)
    ds = slide.levels[level].downsample
    plane = slide.nearest_plane(0.0)
    best, where = -1.0, (0, 0)
    for y in np.linspace(0, size_px - win, 8)[1:-1].round().astype(int):
        for x in np.linspace(0, size_px - win, 8)[1:-1].round().astype(int):
            n = int(win / ds)
            p = slide.read_region(level, int(x), int(y), n, n, plane)
            mask = M.tissue_mask(p, 0.25 * ds)
            frac = mask.mean()
            h = M.stain_od(p)[..., 0][mask]
            rich = float((h > 0.3).mean()) if h.size else 0.0
            score = frac * (0.15 + min(rich, 0.35)) if frac >= 0.7 else 0.01 * frac
            if score > best + 1e-3:
                best, where = score, (int(x), int(y))
    return where


def phantom_tiles(seed: int, stain: str, size_px: int = 8192, tissue_version: int = 1
                  ) -> list[tuple[str, np.ndarray]]:
    """(label, tile) at each of FOCI_UM, from the ground-truth renderer."""
    from engine.phantom.slide import PhantomSlide
    slide = PhantomSlide(seed=seed, size=(size_px, size_px), planes=3, spacing_um=1.0,
                         stain=stain, tissue_version=tissue_version)
    x, y = phantom_window(slide, size_px)
    out = []
    for z in FOCI_UM:
        img = slide.truth(0, x, y, 2 * TILE, 2 * TILE, z)
        tag = f" v{tissue_version}" if tissue_version != 1 else ""
        out.append((f"phantom{tag} {stain.upper()} z={z:+.0f} µm", box_downsample2(np.asarray(img))))
    return out


def real_tiles(data_dir: Path) -> list[tuple[str, np.ndarray]]:
    """(label, tile): the most tissue-filled TILE window of each REAL image (native 0.5 µm/px)."""
    out = []
    by_name = {r.name: r for r in R.REFERENCES}
    for name in REAL:
        ref = by_name[name]
        path = data_dir / ref.relpath
        if not path.exists():
            continue
        img = R.load_image(path)
        patches = R.grid_patches(img, ref.um_per_px, n=10 ** 6)
        if not patches:
            continue
        tile = max(patches, key=lambda p: M.tissue_mask(p, ref.um_per_px).mean())
        out.append((f"real: {Path(name).stem[:22]}", tile))
    return out


def _font(size: int = 12):
    """DejaVu Sans when installed (it has µ), else Pillow's own font."""
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def labelled(tile: np.ndarray, text: str, um_per_px: float = R.COMPARE_UM_PER_PX,
             bar_um: float = 20.0) -> Image.Image:
    """Tile with a caption above and a ``bar_um`` scale bar inside its lower-left corner
    (the tile's scale: ``um_per_px``)."""
    font = _font()
    h, w = tile.shape[:2]
    im = Image.new("RGB", (w, h + LABEL_H), "white")
    im.paste(Image.fromarray(tile), (0, LABEL_H))
    d = ImageDraw.Draw(im)
    d.text((3, 2), text, fill="black", font=font)
    bar = int(round(bar_um / um_per_px))
    y = h + LABEL_H - 10
    d.rectangle([4, y - 16, 12 + bar, y + 6], fill="white")
    d.rectangle([8, y, 8 + bar, y + 3], fill="black")
    d.text((8, y - 15), f"{bar_um:g} µm", fill="black", font=font)
    return im


def grid(rows: list[list[tuple[str, np.ndarray]]], um_per_px: float = R.COMPARE_UM_PER_PX,
         bar_um: float = 20.0) -> Image.Image:
    """Rows of labelled tiles (all of one size) on white."""
    ncol = max(len(r) for r in rows)
    h, w = rows[0][0][1].shape[:2]
    cw, ch = w + PAD, h + LABEL_H + PAD
    im = Image.new("RGB", (ncol * cw + PAD, len(rows) * ch + PAD), "white")
    for i, row in enumerate(rows):
        for j, (text, tile) in enumerate(row):
            im.paste(labelled(tile, text, um_per_px, bar_um), (PAD + j * cw, PAD + i * ch))
    return im


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "realism.png")
    ap.add_argument("--data", type=Path, default=R.default_data_dir())
    ap.add_argument("--report", type=Path, default=REPO / "docs" / "realism_report.json")
    ap.add_argument("--no-report", action="store_true", help="only the figure")
    ap.add_argument("--tissue-version", type=int, nargs="+", choices=(1, 2), default=[1],
                    help="phantom tissue model(s) (default 1)")
    a = ap.parse_args(argv)
    real = dict(real_tiles(a.data))
    labels = list(real)
    he_real = [(k, real[k]) for k in labels if "ihc" not in k]
    ihc_real = [(k, real[k]) for k in labels if "ihc" in k]
    rows = []
    for v in a.tissue_version:
        rows += [phantom_tiles(a.seed, "he", tissue_version=v) + he_real[:1],
                 phantom_tiles(a.seed, "ihc", tissue_version=v) + ihc_real[:1]]
    if len(he_real) > 1:
        rows.append(he_real[1:])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    grid(rows).save(a.out)
    print(a.out)
    if not a.no_report:
        import json

        from engine.phantom.realism import format_table, realism_report
        for v in a.tissue_version:
            rep = realism_report(seed=a.seed, data_dir=a.data, tissue_version=v)
            out = a.report if v == 1 else a.report.with_name(a.report.stem + f"_v{v}" + a.report.suffix)
            out.write_text(json.dumps(rep, indent=1, default=float) + "\n")
            print(format_table(rep))
            print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
