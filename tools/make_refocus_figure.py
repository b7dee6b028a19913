"""Write docs/refocus-real.png: the refocus model on real tissue (one plane in), beside the phantom
with its ground truth, so the size of the change can be judged against the physics.

Every panel is 256 × 256 px at the model's 0.25 µm/px (64 µm square). Real images (native
≈ 0.5 µm/px, see engine/phantom/realism_references.py) are upsampled 2× (bicubic) to that scale,
refocused from their single plane (taken as in focus at z = 0 µm, as a scanner's autofocus leaves
it) to the targets, and shown at the model's scale. The last panel of each row is |output − input|
at the farthest target, ×4, on white (darker = more change).

Rows: real H&E tiles and the real IHC tile (input, then targets); the H&E phantom of an evaluation
seed (never trained on): input = its plane at the region's best focus z*, then the model and the
ground truth at z* + 1 and z* + 2 µm.

    .venv/bin/python tools/make_refocus_figure.py [--weights PATH] [--out docs/refocus-real.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.phantom import realism_measures as M  # noqa: E402
from engine.phantom import realism_references as R  # noqa: E402
from engine.refocus.weights import load_model, shipped_weights  # noqa: E402
from tools.make_realism_figure import grid  # noqa: E402

TILE = 256
MODEL_UM_PER_PX = 0.25
TARGETS_UM = (-1.0, 1.0, -2.0, 2.0)
REAL = ("tiles/tcga-lung-rgb.png", "slides/cmu-1-small-region.svs", "tiles/ihc.png")
PHANTOM_SEED = 2


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).float().permute(2, 0, 1)[None] / 255.0


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(2) * 4
    return np.repeat((255 - np.clip(d, 0, 255)).astype(np.uint8)[..., None], 3, 2)


def real_row(model, ref, data_dir: Path) -> list[tuple[str, np.ndarray]] | None:
    path = data_dir / ref.relpath
    if not path.exists():
        return None
    img = R.load_image(path)
    native = int(round(TILE * MODEL_UM_PER_PX / ref.um_per_px))
    patches = R.grid_patches(img, ref.um_per_px, n=10 ** 6, size=native)
    if not patches:
        return None
    # the most nucleus-rich tissue window: where a change of focus shows most
    tile = max(patches, key=lambda p: M.tissue_mask(p, ref.um_per_px).mean() * (0.2 + (M.stain_od(p)[..., 0] > 0.3).mean()))
    x = F.interpolate(_to_tensor(tile), size=(TILE, TILE), mode="bicubic", align_corners=False).clamp(0, 1)
    inp = _to_uint8(x)
    name = Path(ref.relpath).stem[:18]
    row = [(f"{name}: input (0 µm)", inp)]
    with torch.no_grad():
        field = model.encode(x[:, None], torch.zeros(1, 1))
        outs = {z: _to_uint8(model.decode(field, torch.tensor([z]))) for z in TARGETS_UM}
    row += [(f"model {z:+.0f} µm", outs[z]) for z in TARGETS_UM]
    row.append((f"|{TARGETS_UM[-1]:+.0f} µm − input| ×4", _diff(outs[TARGETS_UM[-1]], inp)))
    return row


def phantom_row(model) -> list[tuple[str, np.ndarray]]:
    from engine.phantom.slide import PhantomSlide

    slide = PhantomSlide(seed=PHANTOM_SEED, size=(8192, 8192), planes=1)
    w, h = slide.dimensions
    best, where = -1.0, (0, 0)
    for y in np.linspace(0, h - TILE, 10)[1:-1].round().astype(int):
        for x in np.linspace(0, w - TILE, 10)[1:-1].round().astype(int):
            p = slide.truth(1, int(x), int(y), TILE // 2, TILE // 2, 0.0)   # x, y in level-0 px
            score = M.tissue_mask(p, 0.5).mean() * (0.2 + (M.stain_od(p)[..., 0] > 0.3).mean())
            if score > best:
                best, where = score, (int(x), int(y))
    x0, y0 = where
    zstar = slide.best_focus_of_region(0, x0, y0, TILE, TILE)
    inp = np.asarray(slide.truth(0, x0, y0, TILE, TILE, zstar))
    row = [(f"phantom {PHANTOM_SEED}: input (z*)", inp)]
    with torch.no_grad():
        field = model.encode(_to_tensor(inp)[:, None], torch.tensor([[zstar]]))
        for dz in (1.0, 2.0):
            out = _to_uint8(model.decode(field, torch.tensor([zstar + dz])))
            truth = np.asarray(slide.truth(0, x0, y0, TILE, TILE, zstar + dz))
            row += [(f"model z*{dz:+.0f} µm", out), (f"truth z*{dz:+.0f} µm", truth)]
    row.append(("|truth z*+2 − input| ×4", _diff(truth, inp)))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="refocus weights (default: the shipped ones)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "refocus-real.png")
    ap.add_argument("--data", type=Path, default=R.default_data_dir())
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    model, _ = load_model(a.weights or shipped_weights())
    model.eval()
    by_path = {r.relpath: r for r in R.REFERENCES}
    rows = [r for r in (real_row(model, by_path[p], a.data) for p in REAL) if r]
    rows.append(phantom_row(model))
    im = grid(rows, MODEL_UM_PER_PX, bar_um=10.0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    im.save(a.out)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
