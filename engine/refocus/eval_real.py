"""Refocusing judged on a user's own z-stacks: hold out each interior captured plane and refocus
to it (``finefocus refocus eval-real``).

For a slide with N ≥ 3 focal planes, every interior plane k (0 < k < N − 1, planes in ascending
z) is held out in turn; its captured pixels are the truth at z_k. Two input sets:

* ``fs = 2``: its two neighbours k − 1 and k + 1;
* ``fs = "all"``: every other plane, at most the model's ``MAX_PLANES`` (16) nearest z_k
  (ties: the lower z), in ascending z.

Methods, all given exactly those inputs at their nominal z (µm):

* ``finefocus``: the refocusing model (the shipped one unless another is given), run as the
  viewer's `RefocusedSlide` runs it: at a pitch other than 0.25 µm/px (beyond ±20 %,
  ``model_scale``) the planes are resampled bicubically to 0.25 µm/px, encoded and decoded at
  z_k; the output is brought back by `native_pitch.to_native_pitch` (area-averaged for coarser
  slides; for finer ones the model's correction of the blend is added to the native blend),
  that correction weighted by the model's trust on the inputs (`trust.loo_trust`: each input
  plane held out and predicted from the others; never the held-out target);
* ``linear``: the linear blend of the two inputs around z_k (= its two neighbours in both sets);
* ``nearest``: the input plane nearest z_k (a tie goes to the lower z);
* ``optics``: `optics_baseline.OpticsRefocus` at the slide's µm/px (best focus estimated from
  the inputs).

Every output is rounded to uint8 RGB, as the viewer shows it, and scored against the held-out
plane: SSIM and PSNR (dB) of ``image_metrics`` over the RGB image, and ``sharpness_ratio`` =
gradient energy of the output / of the real plane, both over the real plane's foreground
(``sharpness.foreground_mask``: not white glass and not flat background, so it works on tissue
and on non-tissue images such as cells or a grey rescaled 16-bit capture; the whole image when
hardly any pixel qualifies). 1 is as sharp as the real plane; above 1 sharper (invented or
amplified detail), below blurrier.

Region. The whole level-0 plane when both sides are at most ``max_px`` (default 512) px, else
the central ``max_px`` × ``max_px`` px (or the ``region`` given, level-0 px). Every method gets
up to ``CONTEXT_UM`` µm of real pixels around the region as context (clipped at the slide's
edges: a tiny stack is used whole), the scores are of the region alone. Pixels are whatever
8-bit RGB the slide's ``read_region`` returns (grey and 16-bit files as the slide layer maps
them). A slide that does not state its µm per px is taken at the model's 0.25 µm/px
(``mpp_assumed`` in the report).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .baselines import blend, linear_weights, nearest_weights
from .image_metrics import as_tensor, psnr, ssim
from .model import MAX_PLANES
from .native_pitch import to_native_pitch
from .trust import loo_trust
from .optics_baseline import OpticsRefocus
from .sharpness import foreground_mask, gradient_energy

__all__ = ["evaluate_real", "region_of", "input_planes", "means", "NoInteriorPlane", "METHODS",
           "DEFAULT_MAX_PX", "CONTEXT_UM"]

METHODS = ("finefocus", "linear", "nearest", "optics")
#: Largest region side (level-0 px) evaluated by default; bigger slides are cut to their centre.
DEFAULT_MAX_PX = 512
#: Real context read around the region for every method (µm; the model's 32-px halo at 0.25 µm/px).
CONTEXT_UM = 8.0
#: The model's pitch, assumed for slides that do not state theirs (µm per px).
MODEL_MPP = 0.25


class NoInteriorPlane(ValueError):
    """The slide has fewer than three focal planes: none can be held out between two others."""


def region_of(dimensions: tuple[int, int], max_px: int = DEFAULT_MAX_PX) -> tuple[int, int, int, int]:
    """(x, y, w, h) level-0 px: the whole plane, or its central ``max_px``² when bigger."""
    W, H = dimensions
    w, h = min(W, max_px), min(H, max_px)
    return (W - w) // 2, (H - h) // 2, w, h


def input_planes(planes_um, k: int, fs) -> list[int]:
    """Indices (ascending z) of the inputs for held-out plane ``k``: its neighbours (fs = 2) or
    all others, at most MAX_PLANES nearest (fs = "all")."""
    if fs == 2:
        return [k - 1, k + 1]
    others = sorted((i for i in range(len(planes_um)) if i != k),
                    key=lambda i: (abs(planes_um[i] - planes_um[k]), planes_um[i]))
    return sorted(others[:MAX_PLANES], key=lambda i: planes_um[i])


def _u8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float [0, 1] -> uint8 (H, W, 3), rounded as the viewer rounds."""
    return (x[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


@torch.no_grad()
def _finefocus(model, planes: np.ndarray, zin, z: float, scale: float) -> np.ndarray:
    h, w = planes.shape[1:3]
    x = torch.from_numpy(planes).permute(0, 3, 1, 2).float() / 255.0
    xs = x if scale == 1.0 else F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    focus = torch.tensor([zin], dtype=torch.float32)
    out = model.decode(model.encode(xs[None], focus), torch.tensor([float(z)]))
    alpha = loo_trust(model, xs[None], zin)[0]          # from the inputs alone
    native = None
    if scale < 1.0:
        native = torch.from_numpy(_blend(planes, zin, z, linear_weights)).permute(2, 0, 1)[None].float() / 255.0
    return _u8(to_native_pitch(out, xs[None], focus, torch.tensor([float(z)]), native, (h, w), alpha))


def _blend(planes: np.ndarray, zin, z: float, weights) -> np.ndarray:
    stack = torch.from_numpy(planes).permute(0, 3, 1, 2).float()[None] / 255.0
    focus = torch.tensor(zin, dtype=torch.float32)[None, :, None, None].expand(1, len(zin), *planes.shape[1:3])
    target = torch.full((1, *planes.shape[1:3]), float(z))
    return _u8(blend(stack, weights(focus, target)))


def _scores(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    o, t = as_tensor(out), as_tensor(truth)
    ref = gradient_energy(truth, mask)
    return {"ssim": round(float(ssim(o, t)[0]), 4), "psnr": round(float(psnr(o, t)[0]), 2),
            "sharpness_ratio": round(gradient_energy(out, mask) / ref, 4) if ref > 0 else float("nan")}


def evaluate_real(slide, name: str, model=None, region: tuple[int, int, int, int] | None = None,
                  max_px: int = DEFAULT_MAX_PX, log=None) -> dict:
    """The report of one slide: ``{"slide", "format", "mpp", "mpp_assumed", "region",
    "planes_um", "rows", "means"}``; rows ``{"slide", "fs", "target" (held-out z, µm), "plane"
    (its index), "method", "ssim", "psnr", "sharpness_ratio"}``. ``model``: a `RefocusNet`
    (None: the shipped one). Raises `NoInteriorPlane` for fewer than 3 planes, ValueError for a
    region outside the slide."""
    from .refocused_slide import model_scale, shipped_model

    planes_um = [float(z) for z in slide.planes_um]
    if len(planes_um) < 3:
        raise NoInteriorPlane(f"{len(planes_um)} focal plane{'s' if len(planes_um) != 1 else ''}; "
                              "eval-real needs at least 3 (an interior plane to hold out between two others)")
    W, H = slide.dimensions
    x, y, w, h = region if region is not None else region_of((W, H), max_px)
    if w < 8 or h < 8 or x < 0 or y < 0 or x + w > W or y + h > H:
        raise ValueError(f"region {x},{y},{w},{h} is not inside the {W}x{H} px slide (at least 8x8 px)")
    mpp_assumed = not (slide.mpp and slide.mpp[0] and slide.mpp[0] > 0)
    px_um = MODEL_MPP if mpp_assumed else float(slide.mpp[0])
    scale = model_scale(None if mpp_assumed else slide.mpp)
    model = model if model is not None else shipped_model()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    m = int(math.ceil(CONTEXT_UM / px_um))
    x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
    stack = np.stack([slide.read_region(0, x0, y0, x1 - x0, y1 - y0, i) for i in range(len(planes_um))])
    crop = (slice(y - y0, y - y0 + h), slice(x - x0, x - x0 + w))

    rows = []
    for k in range(1, len(planes_um) - 1):
        z = planes_um[k]
        truth = stack[k][crop]
        mask = foreground_mask(truth)
        for fs in (2, "all"):
            idx = input_planes(planes_um, k, fs)
            zin = [planes_um[i] for i in idx]
            inputs = stack[idx]
            outs = {
                "finefocus": _finefocus(model, inputs, zin, z, scale),
                "linear": _blend(inputs, zin, z, linear_weights),
                "nearest": _blend(inputs, zin, z, nearest_weights),
                "optics": np.clip(OpticsRefocus(inputs, zin, px_um).refocus(z) * 255 + 0.5, 0, 255).astype(np.uint8),
            }
            for method in METHODS:
                rows.append({"slide": name, "fs": fs, "target": round(z, 4), "plane": k, "method": method,
                             **_scores(outs[method][crop], truth, mask)})
        if log:
            log(f"{name}: plane {k} of {len(planes_um) - 2} interior planes done")
    return {"slide": name, "format": slide.format, "mpp": None if mpp_assumed else [float(v) for v in slide.mpp],
            "mpp_assumed": mpp_assumed, "region": [x, y, w, h], "planes_um": planes_um, "rows": rows,
            "means": means(rows)}


def means(rows: list[dict]) -> list[dict]:
    """Per (slide, fs, method): the mean SSIM, PSNR (dB) and sharpness ratio over the held-out
    planes (``targets`` of them), in the order the rows first name them."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["slide"], r["fs"], r["method"]), []).append(r)
    out = []
    for (slide, fs, method), rs in groups.items():
        out.append({"slide": slide, "fs": fs, "method": method,
                    "ssim": round(float(np.mean([r["ssim"] for r in rs])), 4),
                    "psnr": round(float(np.mean([r["psnr"] for r in rs])), 2),
                    "sharpness_ratio": round(float(np.nanmean([r["sharpness_ratio"] for r in rs])), 4),
                    "targets": len(rs)})
    return out
