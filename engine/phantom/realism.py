"""Realism report: is the phantom inside the spread of the real images on each measure?

For every measure, each image (real or phantom) is reduced to one statistic over its tissue
patches (see ``realism_measures`` for the statistics, units and distances, and
``realism_references`` for the real images, their µm/px and the comparison scale 0.5 µm/px).
The yardstick is the spread among the real images themselves: the distance between every pair
of real images that the measure applies to (min / median / max) beside the distance from the
phantom to each of them. Verdict per measure: **inside** when the median phantom-to-real
distance is at most the largest real-to-real distance *and* each of the measure's key summary
numbers (``KEY_SCALARS``: e.g. median haematoxylin OD, median gradient, spectrum slope, median
nucleus diameter) lies within the real images' [min, max] (widened by ``RANGE_MARGIN``); otherwise **outside**. The second
condition catches a phantom that sits beyond every real image on one side while the distance
test, dominated by one outlying real image, would pass it.

Which images are compared
-------------------------
* colour (H, E, DAB OD of tissue pixels): the H&E phantom with the H&E references, the IHC
  phantom (stain="ihc") with the IHC references (ihc.png, kidney-48-5.tif).
* glass brightness: every reference (it is the scanner's, not the stain's).
* gradients, spectrum, HF power and its fall-off, nuclei: the references resolved at
  0.5 µm/px. The H&E phantom is
  compared with the H&E ones; the IHC phantom with all of them (H&E and IHC), since there is
  only one IHC image at that scale and these measures are about structure and sharpness.

Focus (``hf_power``, ``hf_falloff``): the share of tissue contrast power in 0.5–1 cycle/µm at
0.5 µm/px (``realism_measures.hf_fraction``; a 0.5 µm/px image shows nothing above 1 cycle/µm,
and no reference is finer, so power above 1 cycle/µm is reported for the phantom's native
0.25 µm/px only, as ``hf_native_above_1_cycle_per_um``, with nothing real to compare it with).
``hf_power`` measures it on the same captured-plane patches as the other rows. ``hf_falloff``
is the curve against defocus: each real in-focus patch blurred through our own Born & Wolf
optics (``realism_measures.defocus_blur``) by 0, 1, 2, 3 µm, beside the phantom rendered
noise-free at its region's best focus z* (``best_focus_of_region`` of block-aligned 128 µm
windows) and at z* ± 1, 2, 3 µm (the two signs averaged), box-averaged to 0.5 µm/px. The
blurred real patch is a flat, thin object: its fall-off is the steepest any section can have,
a thick section (real or phantom) keeps some detail in focus over its depth.

Tissue version: ``realism_report(tissue_version=2)`` assesses phantom tissue version 2
(``tissue_params.tissue_params(2)``); 1 (the default) is what the shipped models were trained on.

Importing this module does no work; ``realism_report`` reads the images and renders the
phantom when called. It is deterministic: fixed patch grids, fixed phantom seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from . import realism_measures as M
from . import realism_references as R

#: Minimum glass pixels for a glass brightness to be reported.
MIN_GLASS_PX = 1000

MEASURES = {
    "colour_hed": ("OD", "trimmed W1 of H, E, DAB OD distributions on tissue, mean over stains"),
    "glass_brightness": ("grey level", "|difference| of median glass luminance (0–255)"),
    "gradient": ("1/µm", "trimmed W1 of |∇Y|/mean(Y) distributions on tissue (thesis Fig. 3.4)"),
    "spectrum": ("decades", "RMS difference of log10 radially averaged power spectra"),
    "nuclei": ("µm", "trimmed W1 of nucleus equivalent-diameter distributions"),
    "hf_power": ("decades", "|log10 ratio| of median fractions of tissue contrast power in "
                            "0.5–1 cycle/µm at 0.5 µm/px"),
    "hf_falloff": ("decades", "RMS of log10 ratios of HF fraction(dz) / HF fraction(best focus) "
                              "over dz = 1, 2, 3 µm (real: in-focus patches blurred by our PSF)"),
}


@dataclass
class ImageStats:
    """One image's statistics. None where a measure does not apply."""
    name: str
    family: str
    structural: bool
    hed_q: np.ndarray | None = None          # (3, 99) quantiles of H, E, DAB OD
    glass_grey: float | None = None
    grad_q: np.ndarray | None = None         # (99,) quantiles, 1/µm
    spectrum_f: np.ndarray | None = None     # cycles/µm
    spectrum_p: np.ndarray | None = None
    nuclei_q: np.ndarray | None = None       # (99,) quantiles, µm
    hf: float | None = None                  # median HF fraction (0.5–1 cycle/µm), captured
    falloff: np.ndarray | None = None        # HF fraction at M.HF_DEFOCI_UM from best focus
    summary: dict = field(default_factory=dict)


def image_stats(name: str, family: str, patches: list[np.ndarray], um_per_px: float,
                structural: bool, glass_source: list[np.ndarray] | None = None,
                glass_um_per_px: float | None = None,
                focus_series: np.ndarray | None = None) -> ImageStats:
    """Statistics of one image from its tissue patches (uint8 RGB at um_per_px).

    glass_source: images (at glass_um_per_px) whose glass pixels give the glass brightness;
    default: the patches themselves. focus_series: (windows, len(HF_DEFOCI_UM)) HF fractions
    of the image at each defocus from best focus (``phantom_focus_series``); default: the
    patches taken as in focus and blurred through our optics (``focus_series_of_patches``).
    """
    st = ImageStats(name, family, structural)
    masks = [M.tissue_mask(p, um_per_px) for p in patches]
    hed = np.concatenate([M.stain_values(p, m) for p, m in zip(patches, masks)])
    if len(hed):
        st.hed_q = np.stack([M.quantiles(hed[:, c]) for c in range(3)])
        med = np.median(hed, axis=0)
        p90 = np.quantile(hed, 0.9, axis=0)
        st.summary.update(H_median=float(med[0]), E_median=float(med[1]),
                          DAB_median=float(med[2]), H_p90=float(p90[0]),
                          E_p90=float(p90[1]), DAB_p90=float(p90[2]),
                          tissue_px=int(len(hed)))
    gsrc = glass_source if glass_source is not None else patches
    gum = glass_um_per_px or um_per_px
    glass = np.concatenate([g[M.glass_mask(g, gum)] for g in gsrc])
    if len(glass) >= MIN_GLASS_PX:
        scanned = glass[(glass < 255).any(axis=1)]  # pure white: blank tiles a scanner wrote
        use = scanned if len(scanned) >= MIN_GLASS_PX else glass
        st.glass_grey = float(np.median(M.luminance(use[None])[0])) * 255.0
        st.summary["glass_grey"] = st.glass_grey
    if not structural:
        return st
    grads = np.concatenate([M.normalised_gradient(p, um_per_px)[m] for p, m in zip(patches, masks)])
    st.grad_q = M.quantiles(grads)
    st.summary.update(gradient_median=float(np.median(grads)),
                      gradient_p90=float(np.quantile(grads, 0.9)))
    spectra = [M.radial_power_spectrum(p, um_per_px) for p in patches if p.shape[0] == p.shape[1]]
    st.spectrum_f = spectra[0][0]
    st.spectrum_p = np.mean([s[1] for s in spectra], axis=0)
    st.summary["spectrum_slope"] = M.spectrum_slope(st.spectrum_f, st.spectrum_p)
    hf = [M.hf_fraction(p, um_per_px, tissue=m) for p, m in zip(patches, masks) if p.shape[0] == p.shape[1]]
    hf = [v for v in hf if np.isfinite(v)]
    if hf:
        st.hf = float(np.median(hf))
        st.summary["hf_fraction_median"] = st.hf
    series = focus_series if focus_series is not None else focus_series_of_patches(patches, um_per_px)
    set_falloff(st, series)
    diam = np.concatenate([M.nucleus_diameters_um(p, um_per_px, m) for p, m in zip(patches, masks)])
    tissue_mm2 = sum(float(m.sum()) for m in masks) * um_per_px ** 2 * 1e-6
    st.nuclei_q = M.quantiles(diam) if diam.size >= 5 else None
    st.summary.update(nuclei_count=int(diam.size),
                      nuclei_per_mm2=float(diam.size / tissue_mm2) if tissue_mm2 else 0.0,
                      nucleus_diameter_median_um=float(np.median(diam)) if diam.size else None,
                      nucleus_diameter_p90_um=float(np.quantile(diam, 0.9)) if diam.size else None)
    return st


def focus_series_of_patches(patches: list[np.ndarray], um_per_px: float) -> np.ndarray:
    """(patches, len(HF_DEFOCI_UM)) HF fractions of in-focus patches blurred by each defocus
    (µm) through our optics (``realism_measures.defocus_blur``)."""
    return np.array([[M.hf_fraction(M.defocus_blur(p, um_per_px, dz), um_per_px)
                      for dz in M.HF_DEFOCI_UM] for p in patches if p.shape[0] == p.shape[1]])


def set_falloff(st: ImageStats, series: np.ndarray) -> None:
    """Fill ``st.falloff`` (median HF fraction per defocus over the windows) and its summary:
    ``hf_best_focus`` and ``hf_ratio_{d}um`` = HF(d µm) / HF(best focus)."""
    series = np.asarray(series, np.float64)
    if series.ndim != 2 or not len(series):
        return
    med = np.array([np.nanmedian(series[:, j]) for j in range(series.shape[1])])
    if not np.isfinite(med).all() or med[0] <= 0:
        return
    st.falloff = med
    st.summary["hf_best_focus"] = float(med[0])
    for dz, v in zip(M.HF_DEFOCI_UM[1:], med[1:]):
        st.summary[f"hf_ratio_{dz:g}um"] = float(v / med[0])


def phantom_focus_series(slide, n_windows: int) -> tuple[np.ndarray, list[float]]:
    """HF fractions (windows, len(HF_DEFOCI_UM)) of a phantom at and around its best focus,
    and the windows' HF fraction above 1 cycle/µm at the native 0.25 µm/px (at best focus).

    Windows: 2·PATCH_PX level-0 px (= one render block, block-aligned, so each costs one
    volume and one z* sweep) on an evenly spaced grid, row by row, kept when their in-focus
    image at 0.5 µm/px is at least MIN_TISSUE_FRACTION tissue. Each is rendered noise-free at
    z* (``best_focus_of_region``) and at z* ± dz (µm; the two HF fractions averaged), then
    box-averaged 2×2 to 0.5 µm/px."""
    from engine.slides.array import box_downsample2
    win = 2 * R.PATCH_PX
    W, H = slide.dimensions
    nbx, nby = max(W // win, 1), max(H // win, 1)
    k = max(2, int(np.ceil(np.sqrt(2 * n_windows))))
    bxs = np.unique(np.linspace(1 if nbx > 2 else 0, max(nbx - 2, 0), k).round().astype(int))
    bys = np.unique(np.linspace(1 if nby > 2 else 0, max(nby - 2, 0), k).round().astype(int))
    rows, native = [], []
    for by in bys:
        for bx in bxs:
            if len(rows) >= n_windows:
                break
            x, y = int(bx) * win, int(by) * win
            zs = slide.best_focus_of_region(0, x, y, win, win)
            img0 = slide.truth(0, x, y, win, win, zs)
            small = box_downsample2(img0)
            m = M.tissue_mask(small, R.COMPARE_UM_PER_PX)
            if m.mean() < R.MIN_TISSUE_FRACTION:
                continue
            row = [M.hf_fraction(small, R.COMPARE_UM_PER_PX, tissue=m)]
            for dz in M.HF_DEFOCI_UM[1:]:
                row.append(float(np.mean([M.hf_fraction(box_downsample2(
                    slide.truth(0, x, y, win, win, zs + sg * dz)), R.COMPARE_UM_PER_PX)
                    for sg in (1.0, -1.0)])))
            rows.append(row)
            native.append(M.hf_fraction(img0, 0.5 * R.COMPARE_UM_PER_PX, band=M.HF_BAND_NATIVE))
    return np.array(rows), native


def distance(measure: str, a: ImageStats, b: ImageStats) -> float | None:
    """Distance between two images on one measure (units in MEASURES), None if not applicable."""
    if measure == "colour_hed":
        if a.hed_q is None or b.hed_q is None:
            return None
        return float(np.mean([M.quantile_distance(a.hed_q[c], b.hed_q[c]) for c in range(3)]))
    if measure == "glass_brightness":
        if a.glass_grey is None or b.glass_grey is None:
            return None
        return abs(a.glass_grey - b.glass_grey)
    if measure == "gradient":
        if a.grad_q is None or b.grad_q is None:
            return None
        return M.quantile_distance(a.grad_q, b.grad_q)
    if measure == "spectrum":
        if a.spectrum_p is None or b.spectrum_p is None:
            return None
        return M.log_spectrum_distance(a.spectrum_p, b.spectrum_p)
    if measure == "nuclei":
        if a.nuclei_q is None or b.nuclei_q is None:
            return None
        return M.quantile_distance(a.nuclei_q, b.nuclei_q)
    if measure == "hf_power":
        if not a.hf or not b.hf:
            return None
        return abs(float(np.log10(a.hf / b.hf)))
    if measure == "hf_falloff":
        if a.falloff is None or b.falloff is None:
            return None
        ra, rb = a.falloff[1:] / a.falloff[0], b.falloff[1:] / b.falloff[0]
        return float(np.sqrt(np.mean(np.log10(np.maximum(ra, 1e-12) / np.maximum(rb, 1e-12)) ** 2)))
    raise ValueError(f"unknown measure {measure!r}")


def references_for(measure: str, stain: str, refs: list[ImageStats]) -> list[ImageStats]:
    """The real images a phantom of this stain is compared with on this measure."""
    if measure == "colour_hed":
        return [r for r in refs if r.family == stain]
    if measure == "glass_brightness":
        return list(refs)
    chosen = [r for r in refs if r.structural]
    return [r for r in chosen if r.family == "he"] if stain == "he" else chosen


#: Summary numbers checked against the real range [min, max] for each measure.
KEY_SCALARS = {
    "colour_hed": ("H_median", "E_median", "DAB_median", "H_p90", "E_p90", "DAB_p90"),
    "glass_brightness": ("glass_grey",),
    "gradient": ("gradient_median", "gradient_p90"),
    "spectrum": ("spectrum_slope",),
    "nuclei": ("nucleus_diameter_median_um", "nucleus_diameter_p90_um", "nuclei_per_mm2"),
    "hf_power": ("hf_fraction_median",),
    "hf_falloff": ("hf_best_focus", "hf_ratio_1um", "hf_ratio_2um", "hf_ratio_3um"),
}

#: Key numbers compared on a log scale (their real range spans a decade or more): the range
#: test and its margin are applied to log10 of the value.
LOG_SCALARS = {"hf_fraction_median", "hf_best_focus", "hf_ratio_1um", "hf_ratio_2um", "hf_ratio_3um"}


#: The real [min, max] of a key number is widened by this fraction of its width on each side:
#: with 3–5 real images the extremes are noisy (a real image measured on other windows moves
#: by 5–15 %, enough to step just outside a bare min–max).
RANGE_MARGIN = 0.25

#: ... and by at least this much (unit of the measure), so a zero-width real range (e.g. no
#: eosin at all in the IHC images) does not fail a phantom over a negligible amount.
RANGE_FLOOR = {"colour_hed": 0.02, "glass_brightness": 2.0, "gradient": 0.005,
               "spectrum": 0.1, "nuclei": 0.25, "hf_power": 0.05, "hf_falloff": 0.05}


def scalar_ranges(measure: str, phantom: ImageStats, refs: list[ImageStats]) -> dict:
    """{key: {phantom, real_min, real_max, in_range}} for the measure's KEY_SCALARS
    (in_range: within [min, max] widened by RANGE_MARGIN of its width each side)."""
    out = {}
    for key in KEY_SCALARS[measure]:
        real = [r.summary.get(key) for r in refs]
        real = [v for v in real if v is not None]
        pv = phantom.summary.get(key)
        if not real or pv is None:
            continue
        lo, hi = min(real), max(real)
        tr = (lambda v: float(np.log10(max(v, 1e-12)))) if key in LOG_SCALARS else float
        tlo, thi, tpv = tr(lo), tr(hi), tr(pv)
        margin = max(RANGE_MARGIN * (thi - tlo), RANGE_FLOOR[measure])
        out[key] = {"phantom": pv, "real_min": lo, "real_max": hi,
                    "real_median": float(np.median(real)),
                    "in_range": bool(tlo - margin <= tpv <= thi + margin)}
    return out


def compare(measure: str, phantom: ImageStats, refs: list[ImageStats]) -> dict:
    """One row of the report: phantom-to-real beside real-to-real distances and the verdict."""
    unit, how = MEASURES[measure]
    p2r = {r.name: distance(measure, phantom, r) for r in refs}
    p2r = {k: v for k, v in p2r.items() if v is not None}
    r2r = [(a.name, b.name, distance(measure, a, b)) for a, b in combinations(refs, 2)]
    r2r = [(a, b, d) for a, b, d in r2r if d is not None]
    rr = np.array([d for _, _, d in r2r])
    row = {"measure": measure, "stain": phantom.family, "unit": unit, "distance": how,
           "phantom_to_real": p2r,
           "phantom_to_real_median": float(np.median(list(p2r.values()))) if p2r else None,
           "real_to_real": {"pairs": [[a, b, d] for a, b, d in r2r],
                            "min": float(rr.min()) if rr.size else None,
                            "median": float(np.median(rr)) if rr.size else None,
                            "max": float(rr.max()) if rr.size else None}}
    row["scalars"] = scalar_ranges(measure, phantom, refs)
    if not rr.size:
        row["verdict"] = "n/a"
    elif row["phantom_to_real_median"] is None:  # e.g. no nucleus found in the phantom
        row["verdict"] = "outside"
        row["note"] = "the phantom lacks this statistic"
    else:
        row["distance_inside"] = bool(row["phantom_to_real_median"] <= rr.max())
        row["scalars_inside"] = all(v["in_range"] for v in row["scalars"].values())
        row["verdict"] = ("inside" if row["distance_inside"] and row["scalars_inside"]
                          else "outside")
    return row


def make_phantom(seed: int, stain: str, size_px: int = 8192, tissue_version: int = 1):
    """The PhantomSlide the report assesses: size_px² level-0 px, 3 planes 1 µm apart, tissue
    model ``tissue_version``."""
    from .slide import PhantomSlide
    return PhantomSlide(seed=seed, size=(size_px, size_px), planes=3, spacing_um=1.0,
                        stain=stain, tissue_version=tissue_version)


def slide_patches(slide, n_patches: int, max_tries: int | None = None
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Tissue patches of a 0.25 µm/px slide at COMPARE_UM_PER_PX, from its plane nearest z = 0.

    Candidate windows of 2·PATCH_PX level-0 px lie on an evenly spaced grid over the slide
    (row by row, stopping once n_patches are found); each is box-averaged 2×2 to 0.5 µm/px
    and kept when its tissue fraction is at least MIN_TISSUE_FRACTION (when none is, the most
    tissue-filled windows with > 5 % tissue are used, and the report says so). Returns (tissue
    patches, every candidate rendered): the candidates also give the glass brightness, so no
    costly overview render is needed; when none of them shows glass, the four corner windows
    of the slide (kept clear of tissue by the layout) are rendered and added for it.
    """
    from engine.slides.array import box_downsample2
    W, H = slide.dimensions
    plane = slide.nearest_plane(0.0)
    win = 2 * R.PATCH_PX
    k = max(2, int(np.ceil(np.sqrt(max_tries or 2 * n_patches))))
    xs = np.linspace(0, max(W - win, 0), k + 2)[1:-1].round().astype(int)
    ys = np.linspace(0, max(H - win, 0), k + 2)[1:-1].round().astype(int)
    out: list[np.ndarray] = []
    seen: list[np.ndarray] = []
    for y in ys:
        for x in xs:
            if len(out) >= n_patches:
                break
            p = box_downsample2(slide.read_region(0, int(x), int(y), win, win, plane))
            seen.append(p)
            if M.tissue_mask(p, R.COMPARE_UM_PER_PX).mean() >= R.MIN_TISSUE_FRACTION:
                out.append(p)
    glass = sum(int(M.glass_mask(p, R.COMPARE_UM_PER_PX).sum()) for p in seen)
    if glass < MIN_GLASS_PX:  # every candidate was tissue: the slide's corners hold its glass
        for x, y in ((0, 0), (W - win, 0), (0, H - win), (W - win, H - win)):
            seen.append(box_downsample2(slide.read_region(0, max(int(x), 0), max(int(y), 0), win, win, plane)))
    if not out:  # too pale to pass the mask: measure the most tissue-filled windows anyway
        frac = [M.tissue_mask(p, R.COMPARE_UM_PER_PX).mean() for p in seen]
        order = [i for i in np.argsort(frac)[::-1] if frac[i] > 0.05][:n_patches]
        out = [seen[i] for i in order]
    return out, seen


def reference_stats(data_dir: Path | None = None, n_patches: int = 8) -> list[ImageStats]:
    """Statistics of every reference image present in data_dir (missing files are skipped)."""
    data_dir = Path(data_dir) if data_dir is not None else R.default_data_dir()
    out = []
    for ref in R.REFERENCES:
        if not (data_dir / ref.relpath).exists():
            continue
        ri = R.load_reference(ref, data_dir, n_patches)
        glass_src = [ri.whole]
        st = image_stats(ref.name, ref.family, ri.patches, ri.um_per_px, ref.structural,
                         glass_source=glass_src, glass_um_per_px=ri.um_per_px)
        st.summary.update(um_per_px=ref.um_per_px, scale_source=ref.scale_source,
                          patches=len(ri.patches))
        out.append(st)
    return out


def realism_report(seed: int = 0, n_patches: int = 4, stains: tuple[str, ...] = ("he", "ihc"),
                   data_dir: Path | None = None, phantom_size_px: int = 8192,
                   slides: dict | None = None, references: list[ImageStats] | None = None,
                   tissue_version: int = 1) -> dict:
    """The realism table as a JSON-ready dict (see module docstring).

    seed: phantom seed; n_patches: tissue patches per image (real and phantom), each
    PATCH_PX² at 0.5 µm/px (128 µm square); stains: phantom stains to assess;
    slides: optional {stain: Slide at 0.25 µm/px} assessed instead of the phantom (any slide
    can be held against the real spread this way; a slide without ``best_focus_of_region``
    gets the real images' fall-off protocol); references: precomputed
    ``reference_stats(data_dir, n_patches)``; tissue_version: the phantom's tissue model.
    """
    refs = references if references is not None else reference_stats(data_dir, n_patches)
    if not refs:
        raise FileNotFoundError(f"{data_dir or R.default_data_dir()}: no reference images found")
    report = {"seed": seed, "tissue_version": int(tissue_version), "n_patches": n_patches,
              "compare_um_per_px": R.COMPARE_UM_PER_PX, "hf_band_cycles_per_um": list(M.HF_BAND),
              "hf_defoci_um": list(M.HF_DEFOCI_UM),
              "patch_px": R.PATCH_PX, "verdict_rule": "inside when median phantom-to-real "
              "distance <= max real-to-real distance",
              "measures": {k: {"unit": u, "distance": d} for k, (u, d) in MEASURES.items()},
              "images": {r.name: r.summary for r in refs}, "rows": []}
    for stain in stains:
        slide = (slides or {}).get(stain) or make_phantom(seed, stain, phantom_size_px, tissue_version)
        patches, seen = slide_patches(slide, n_patches)
        name = f"phantom-{stain}"
        if not patches:
            report["rows"].append({"measure": "all", "stain": stain, "verdict": "outside",
                                   "note": "no phantom patch with ≥ 50 % tissue"})
            continue
        series, native = None, []
        if hasattr(slide, "best_focus_of_region") and hasattr(slide, "truth"):
            series, native = phantom_focus_series(slide, n_patches)
        ph = image_stats(name, stain, patches, R.COMPARE_UM_PER_PX, True, glass_source=seen,
                         focus_series=series)
        if native:
            ph.summary["hf_native_above_1_cycle_per_um"] = float(np.nanmedian(native))
        ph.summary["patches"] = len(patches)
        ph.summary["tissue_fraction_min"] = float(min(
            M.tissue_mask(p, R.COMPARE_UM_PER_PX).mean() for p in patches))
        report["images"][name] = ph.summary
        for measure in MEASURES:
            row = compare(measure, ph, references_for(measure, stain, refs))
            report["rows"].append(row)
    return report


def format_table(report: dict) -> str:
    """Plain-text realism table: one line per (stain, measure)."""
    lines = [f"phantom seed {report.get('seed')}, tissue version {report.get('tissue_version', 1)}",
             f"{'stain':5} {'measure':17} {'unit':10} {'phantom→real med':>16} "
             f"{'real↔real min/med/max':>26}  verdict"]
    for row in report["rows"]:
        rr = row.get("real_to_real", {})
        f = (lambda v: "—" if v is None else f"{v:.3g}")
        lines.append(f"{row['stain']:5} {row['measure']:17} {row.get('unit', ''):10} "
                     f"{f(row.get('phantom_to_real_median')):>16} "
                     f"{f(rr.get('min')) + ' / ' + f(rr.get('median')) + ' / ' + f(rr.get('max')):>26}"
                     f"  {row['verdict']}")
        for key, v in row.get("scalars", {}).items():
            if row["measure"].startswith("hf_"):
                lines.append(f"      {key}: phantom {v['phantom']:.3g}, real {v['real_min']:.3g} / "
                             f"{v['real_median']:.3g} / {v['real_max']:.3g}"
                             f"{'' if v['in_range'] else '  (outside)'}")
            elif not v["in_range"]:
                lines.append(f"      {key}: phantom {v['phantom']:.3g}, real "
                             f"{v['real_min']:.3g}..{v['real_max']:.3g}")
    return "\n".join(lines)
