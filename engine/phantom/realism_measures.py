"""Image statistics that say whether a brightfield patch looks like real tissue, and distances
between them. Pure functions over uint8 RGB patches (H, W, 3) sampled at a known µm per pixel.

Units
-----
* Optical density (OD) is decadic: OD = −log10(I / 255). Stain amounts come from
  ``skimage.color.rgb2hed`` (Ruifrok & Johnston colour deconvolution) rescaled to decadic OD:
  rgb2hed divides the natural-log OD by −ln(1e−6) = 13.8155, so OD_decadic = 6 · rgb2hed.
  A pure-haematoxylin Beer–Lambert pixel I = 255 · 10^(−c · v_H) gives H = c exactly.
* Gradients are of luminance Y ∈ [0, 1] divided by the patch's mean luminance (thesis Fig. 3.4:
  "the image gradient normalized by the average luminance"), per µm.
* Spatial frequency is in cycles per µm; power spectra are of Y / mean(Y) − 1 (contrast).
* Nucleus sizes are equivalent diameters (diameter of the disc of equal area) in µm.
* High-frequency (HF) fraction: the share of a patch's tissue luminance-contrast power that
  lies in a radial frequency band (cycles/µm), out of all its power up to the band's top; a
  number in [0, 1], compared in decades (log10 ratios). See ``hf_fraction``.

Distances (all ≥ 0, 0 for identical statistics)
------------------------------------------------
* Distributions are summarised by their quantiles at ``QUANTILES`` (1 %, 2 %, …, 99 %). The
  distance between two such summaries is their mean absolute difference, which is the
  1-Wasserstein (earth mover's) distance between the two distributions with the outer 1 %
  tails trimmed; it is in the unit of the quantity (OD, 1/µm, µm).
* Power spectra: root-mean-square difference of log10 power over the common frequency bins
  (decades of power).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Quantile levels that summarise a distribution (1 % … 99 %).
QUANTILES = np.linspace(0.01, 0.99, 99)

#: Stain optical-density vectors of rgb2hed: decadic OD = HED_TO_OD · rgb2hed output.
HED_TO_OD = np.log(1e6) / np.log(10.0)  # = 6.0

#: Tissue mask: smoothed mean-over-RGB OD above this is tissue. Empty glass from scanners is
#: 225–250 in every channel (mean OD ≤ 0.055); the palest eosin-stained stroma is ≈ 0.08–0.1.
TISSUE_OD = 0.07
#: Glass: smoothed mean OD below this (brighter than ≈ 228 in every channel on average).
GLASS_OD = 0.05
#: Gaussian smoothing of the OD image before thresholding, µm.
MASK_SMOOTH_UM = 2.0
#: Tissue and glass regions smaller than this (µm²) are dropped (dust, specks, small lumens).
MASK_MIN_AREA_UM2 = 100.0

#: Nuclei: smoothing of the haematoxylin OD before thresholding, µm.
NUCLEUS_SMOOTH_UM = 0.5
#: Nuclei smaller or larger than these equivalent diameters (µm) are not counted
#: (specks / merged clusters that the watershed could not split).
NUCLEUS_MIN_UM = 2.5
NUCLEUS_MAX_UM = 20.0
#: Lowest haematoxylin OD threshold: an Otsu threshold below it means "no nuclei here".
NUCLEUS_MIN_OD = 0.15

#: Frequencies (cycles/µm) over which the power-spectrum slope is fitted. The top is kept
#: below Nyquist at 0.5 µm/px (1 cycle/µm) where JPEG and demosaicing dominate.
SPECTRUM_FIT_BAND = (0.04, 0.7)

#: The focus-relevant band (cycles/µm) at the comparison pitch 0.5 µm/px: the upper half of
#: what such an image can show (Nyquist 1 cycle/µm along the axes). Power above 1 cycle/µm
#: exists only at finer pitches (the phantom's native 0.25 µm/px: ``HF_BAND_NATIVE``); no real
#: reference is sampled that finely, so only the 0.5 µm/px band is compared.
HF_BAND = (0.5, 1.0)
#: ... and the band above 1 cycle/µm at 0.25 µm/px (up to its Nyquist, 2 cycles/µm).
HF_BAND_NATIVE = (1.0, 2.0)
#: Least tissue share of a patch for an HF fraction (below it the patch gives NaN).
HF_MIN_TISSUE = 0.2
#: Feathering (Gaussian σ, µm) of the tissue mask that weights the HF fraction's spectrum.
HF_FEATHER_UM = 3.0
#: Defocus distances (µm) of the HF fall-off curve.
HF_DEFOCI_UM = (0.0, 1.0, 2.0, 3.0)


# --------------------------------------------------------------------------- colour

def optical_density(rgb: np.ndarray) -> np.ndarray:
    """Per-channel decadic OD, float32 (H, W, 3), of a uint8 RGB image; 255 → 0."""
    i = np.maximum(np.asarray(rgb, np.float32), 1.0) / 255.0
    return -np.log10(i)


def stain_od(rgb: np.ndarray) -> np.ndarray:
    """Haematoxylin, eosin and DAB amounts (decadic OD, float32 (H, W, 3), clipped ≥ 0)."""
    from skimage.color import rgb2hed
    return (rgb2hed(np.asarray(rgb, np.uint8)) * HED_TO_OD).astype(np.float32)


def _smooth_mean_od(rgb: np.ndarray, um_per_px: float) -> np.ndarray:
    return ndi.gaussian_filter(optical_density(rgb).mean(axis=2), MASK_SMOOTH_UM / um_per_px)


def _drop_small(mask: np.ndarray, min_px: float) -> np.ndarray:
    """Mask without its 4-connected regions of fewer than min_px pixels."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    keep = np.bincount(lab.ravel()) >= min_px
    keep[0] = False
    return keep[lab]


def tissue_mask(rgb: np.ndarray, um_per_px: float) -> np.ndarray:
    """Boolean (H, W): tissue rather than glass.

    Mean OD over R, G, B, Gaussian-smoothed with σ = MASK_SMOOTH_UM, above TISSUE_OD; then
    regions (and holes) smaller than MASK_MIN_AREA_UM2 are removed (holes are filled).
    """
    m = _smooth_mean_od(rgb, um_per_px) > TISSUE_OD
    min_px = MASK_MIN_AREA_UM2 / um_per_px ** 2
    m = _drop_small(m, min_px)
    return ~_drop_small(~m, min_px)


def glass_mask(rgb: np.ndarray, um_per_px: float) -> np.ndarray:
    """Boolean (H, W): empty glass (smoothed mean OD < GLASS_OD), without small specks."""
    m = _smooth_mean_od(rgb, um_per_px) < GLASS_OD
    return _drop_small(m, MASK_MIN_AREA_UM2 / um_per_px ** 2)


def quantiles(values: np.ndarray) -> np.ndarray:
    """The distribution summary used everywhere: values at QUANTILES (NaN when empty)."""
    v = np.asarray(values, np.float64).ravel()
    if v.size == 0:
        return np.full(QUANTILES.size, np.nan)
    return np.quantile(v, QUANTILES)


def quantile_distance(qa: np.ndarray, qb: np.ndarray) -> float:
    """Trimmed 1-Wasserstein distance between two quantile summaries (unit of the values)."""
    return float(np.mean(np.abs(np.asarray(qa) - np.asarray(qb))))


def stain_values(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, 3) H, E, DAB OD of the masked pixels."""
    return stain_od(rgb)[mask]


# --------------------------------------------------------------------------- gradients

def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in [0, 1], float32 (H, W)."""
    f = np.asarray(rgb, np.float32) / 255.0
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def normalised_gradient(rgb: np.ndarray, um_per_px: float) -> np.ndarray:
    """|∇Y| / mean(Y) per µm, float32 (H, W), central differences (thesis Fig. 3.4)."""
    y = luminance(rgb)
    gy, gx = np.gradient(y)
    return (np.hypot(gx, gy) / max(float(y.mean()), 1e-6) / um_per_px).astype(np.float32)


# --------------------------------------------------------------------------- spectrum

def spectrum_bins(size_px: int, um_per_px: float, n_bins: int = 20) -> np.ndarray:
    """Log-spaced radial frequency bin edges (cycles/µm) from 2 cycles per patch to Nyquist."""
    f_lo = 2.0 / (size_px * um_per_px)
    f_hi = 0.5 / um_per_px
    return np.geomspace(f_lo, f_hi, n_bins + 1)


def radial_power_spectrum(rgb: np.ndarray, um_per_px: float, n_bins: int = 20
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the luminance contrast Y/mean(Y) − 1 of a square patch.

    A 2-D Hann window suppresses the edge discontinuity. Returns (f, P): bin centres in
    cycles/µm (geometric mean of the edges) and mean power per bin (contrast² · µm²),
    normalised by the window energy so white noise of variance s² gives P ≈ s² · (px area).
    """
    y = luminance(rgb).astype(np.float64)
    n = y.shape[0]
    if y.shape[1] != n:
        raise ValueError(f"radial_power_spectrum needs a square patch, got {y.shape}")
    x = y / max(y.mean(), 1e-6) - 1.0
    w1 = np.hanning(n)
    w = np.outer(w1, w1)
    x = (x - (x * w).sum() / w.sum()) * w
    p = np.abs(np.fft.fft2(x)) ** 2 / (w ** 2).sum() * um_per_px ** 2
    fx = np.fft.fftfreq(n, d=um_per_px)
    fr = np.hypot(fx[None, :], fx[:, None])
    edges = spectrum_bins(n, um_per_px, n_bins)
    idx = np.digitize(fr.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < n_bins)
    sums = np.bincount(idx[ok], weights=p.ravel()[ok], minlength=n_bins)
    counts = np.bincount(idx[ok], minlength=n_bins)
    power = sums / np.maximum(counts, 1)
    return np.sqrt(edges[:-1] * edges[1:]), power


def spectrum_slope(f: np.ndarray, power: np.ndarray, band=SPECTRUM_FIT_BAND) -> float:
    """Slope of log10 P against log10 f (P ∝ f^slope) over the band (cycles/µm)."""
    sel = (f >= band[0]) & (f <= band[1]) & (power > 0)
    return float(np.polyfit(np.log10(f[sel]), np.log10(power[sel]), 1)[0])


def log_spectrum_distance(pa: np.ndarray, pb: np.ndarray) -> float:
    """RMS difference of log10 power over common bins (decades)."""
    la, lb = np.log10(np.maximum(pa, 1e-30)), np.log10(np.maximum(pb, 1e-30))
    return float(np.sqrt(np.mean((la - lb) ** 2)))


def hf_fraction(rgb: np.ndarray, um_per_px: float, band=HF_BAND, tissue: np.ndarray | None = None,
                f_min_cycles_per_patch: float = 2.0) -> float:
    """Fraction of the tissue's luminance-contrast power in the radial band ``band`` (cycles/µm,
    [lo, hi)) out of all its power from ``f_min_cycles_per_patch`` cycles per patch up to hi.

    Tissue only: the contrast Y / mean(Y) − 1 is weighted by a 2-D Hann window times the tissue
    mask (``tissue``, default ``tissue_mask``) feathered by a Gaussian of σ = ``HF_FEATHER_UM``
    (mean and weights from the same product), so glass and its noise weigh nothing while the
    weight stays smooth: a hard mask would add its own step, which no defocus blurs. Frequencies
    beyond hi (the corners of the square FFT grid, up to √2 × Nyquist) are left out of both sums,
    so the measure is isotropic. The patch must be square, at ``um_per_px`` µm per pixel, with
    hi ≤ its Nyquist frequency 0.5 / um_per_px. NaN when fewer than ``HF_MIN_TISSUE`` of the
    pixels are tissue. Units: band in cycles/µm; the result is a pure number in [0, 1].
    """
    y = luminance(rgb).astype(np.float64)
    n = y.shape[0]
    if y.shape[1] != n:
        raise ValueError(f"hf_fraction needs a square patch, got {y.shape}")
    lo, hi = float(band[0]), float(band[1])
    if hi > 0.5 / um_per_px * (1 + 1e-9):
        raise ValueError(f"band top {hi} cycles/µm is above the Nyquist frequency "
                         f"{0.5 / um_per_px:g} of {um_per_px} µm/px")
    m = tissue_mask(rgb, um_per_px) if tissue is None else np.asarray(tissue, bool)
    if m.mean() < HF_MIN_TISSUE:
        return float("nan")
    w1 = np.hanning(n)
    wgt = np.outer(w1, w1) * ndi.gaussian_filter(m.astype(np.float64), HF_FEATHER_UM / um_per_px)
    x = y / max(float((wgt * y).sum() / wgt.sum()), 1e-6) - 1.0
    x = (x - (x * wgt).sum() / wgt.sum()) * wgt
    p = np.abs(np.fft.rfft2(x)) ** 2
    fy = np.fft.fftfreq(n, d=um_per_px)
    fx = np.fft.rfftfreq(n, d=um_per_px)
    fr = np.hypot(fy[:, None], fx[None, :])
    wt = np.ones(fx.size)          # the rfft half-plane: interior columns stand for two
    wt[1:(n + 1) // 2] = 2.0
    p = p * wt[None, :]
    f_min = f_min_cycles_per_patch / (n * um_per_px)
    total = p[(fr >= f_min) & (fr < hi)].sum()
    return float(p[(fr >= lo) & (fr < hi)].sum() / total) if total > 0 else float("nan")


def defocus_blur(rgb: np.ndarray, um_per_px: float, dz_um: float, optics=None,
                 pad_um: float = 16.0) -> np.ndarray:
    """A real in-focus image as our optics would show it ``dz_um`` µm out of focus (uint8 RGB).

    Each channel's optical density (as the phantom's renderer blurs OD) is filtered by the ratio
    of the Born & Wolf defocus OTFs ``OTF_c(dz) / OTF_c(0)`` (``optics.otf_defocus``, the
    channel's wavelength, ``optics`` default ``Optics()``: 40×/0.75 NA): the image already went
    through the in-focus optics, so only the extra blur is applied. No aberration raises the
    MTF above the in-focus one, so the ratio is at most 1 in magnitude; it is set to 0 where
    OTF_c(0) < 0.02 (beyond the cut-off). The image is mirror-padded by ``pad_um`` µm (wider
    than the PSF up to ~10 µm of defocus) so no edge wraps round. dz = 0 returns the image.
    """
    from .optics import Optics, otf_defocus
    img = np.asarray(rgb, np.uint8)
    if dz_um == 0:
        return img.copy()
    o = optics or Optics()
    pad = int(np.ceil(pad_um / um_per_px))
    od = np.pad(optical_density(img), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = od.shape[:2]
    nu = np.hypot(np.fft.fftfreq(h, d=um_per_px)[:, None], np.fft.rfftfreq(w, d=um_per_px)[None, :])
    out = np.empty(img.shape, np.float32)
    for c in range(3):
        wl = o.wavelengths_um[c]
        grid = np.linspace(0.0, float(nu.max()) * 1.001, 2048)
        h0 = otf_defocus(grid, 0.0, wl, o.na, o.n_immersion)
        hz = otf_defocus(grid, float(dz_um), wl, o.na, o.n_immersion)
        ratio = np.where(h0 > 0.02, hz / np.maximum(h0, 0.02), 0.0)
        tf = np.interp(nu, grid, ratio)
        blurred = np.fft.irfft2(np.fft.rfft2(od[..., c]) * tf, s=(h, w))
        out[..., c] = blurred[pad:pad + img.shape[0], pad:pad + img.shape[1]]
    return np.clip(np.round(255.0 * 10.0 ** (-out)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- nuclei

def nucleus_mask(rgb: np.ndarray, um_per_px: float, tissue: np.ndarray | None = None
                 ) -> np.ndarray:
    """Boolean (H, W): haematoxylin blobs that stand out from their surroundings.

    Haematoxylin OD (rgb2hed) is smoothed with σ = NUCLEUS_SMOOTH_UM and its local background
    removed by a white top-hat (grey opening with a square of side 2·NUCLEUS_MAX_UM), so the
    haematoxylin cross-talk of eosin, DAB or purple cytoplasm does not count. A pixel is nucleus
    when that top-hat exceeds the upper of the two three-class Otsu thresholds of its values on
    tissue (classes: unstained, stained cytoplasm/stroma, nuclei; values clipped at their 99th
    percentile; at least NUCLEUS_MIN_OD).
    """
    from skimage.filters import apply_hysteresis_threshold, threshold_multiotsu
    h = ndi.gaussian_filter(stain_od(rgb)[..., 0], NUCLEUS_SMOOTH_UM / um_per_px)
    side = int(round(2 * NUCLEUS_MAX_UM / um_per_px)) | 1
    top = h - ndi.grey_opening(h, size=(side, side))
    if tissue is None:
        tissue = tissue_mask(rgb, um_per_px)
    vals = top[tissue]
    if vals.size:  # near-black debris and ink would drag Otsu's threshold up
        vals = np.minimum(vals, np.quantile(vals, 0.99))
    if vals.size < 16 or vals.max() - vals.min() < 1e-3:
        return np.zeros(h.shape, bool)
    low, high = threshold_multiotsu(vals, classes=3)
    high = max(float(high), NUCLEUS_MIN_OD)
    low = max(0.5 * (float(low) + high), NUCLEUS_MIN_OD)
    return apply_hysteresis_threshold(np.where(tissue, top, 0.0), low, high)


def nucleus_diameters_um(rgb: np.ndarray, um_per_px: float,
                         tissue: np.ndarray | None = None) -> np.ndarray:
    """Equivalent diameters (µm) of the nuclei in a patch.

    Touching nuclei are split by a watershed on the distance transform, seeded at its local
    maxima at least NUCLEUS_MIN_UM apart; objects touching the patch border are dropped
    (their size is unknown), as are those outside [NUCLEUS_MIN_UM, NUCLEUS_MAX_UM].
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import clear_border, watershed
    m = nucleus_mask(rgb, um_per_px, tissue)
    if not m.any():
        return np.zeros(0)
    m = ndi.binary_opening(m, iterations=1)
    dist = ndi.distance_transform_edt(m)
    lab, _ = ndi.label(m)
    peaks = peak_local_max(dist, min_distance=max(1, int(round(NUCLEUS_MIN_UM / um_per_px))),
                           labels=lab, exclude_border=False)
    markers = np.zeros(m.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    seg = clear_border(watershed(-dist, markers, mask=m))
    areas = np.bincount(seg.ravel())[1:]
    areas = areas[areas > 0]
    d = 2.0 * np.sqrt(areas / np.pi) * um_per_px
    return d[(d >= NUCLEUS_MIN_UM) & (d <= NUCLEUS_MAX_UM)]
