"""Status bar read-outs: cursor position in level-0 px and µm, the overlay's value under the
cursor, magnification, tile activity."""
from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel, QStatusBar

from engine.slides.base import Slide

#: A 10× objective images about 1 µm per camera px on a typical scanner (so 40× ≈ 0.25 µm/px).
UM_PER_PX_AT_1X = 10.0

_POWER_KEYS = ("openslide.objective-power", "aperio.AppMag", "hamamatsu.SourceLens")


def scan_magnification(slide: Slide) -> float | None:
    """The objective power of level 0: from the file's properties, else from µm per px."""
    for key in _POWER_KEYS:
        try:
            value = float(slide.properties.get(key, ""))
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value
    if slide.mpp and slide.mpp[0] > 0:
        return UM_PER_PX_AT_1X / slide.mpp[0]
    return None


def format_position(x: float, y: float, mpp: tuple[float, float] | None) -> str:
    """``x 1234  y 567 px  (615.8, 283.0 µm)`` for a level-0 px position."""
    text = f"x {x:.0f}  y {y:.0f} px"
    if mpp:
        text += f"  ({x * mpp[0]:.1f}, {y * mpp[1]:.1f} µm)"
    return text


def format_magnification(slide: Slide, screen_px_per_level0_px: float, level: int) -> str:
    """``10.0× (scan 40×) · level 2`` — the magnification on screen, the scan's, the level read."""
    scan = scan_magnification(slide)
    if scan is None:
        head = f"zoom {screen_px_per_level0_px * 100:.0f}%"
    else:
        head = f"{scan * screen_px_per_level0_px:.1f}× (scan {scan:.3g}×)"
    return f"{head} · level {level}"


def describe_slide(slide: Slide) -> str:
    """A few lines for the side panel: format, size, µm per px, levels, planes (µm)."""
    W, H = slide.dimensions
    lines = [f"<b>{slide.format}</b>", f"{W} × {H} px"]
    if slide.mpp:
        w_um, h_um = W * slide.mpp[0], H * slide.mpp[1]
        extent = (f"{w_um / 1000:.2f} × {h_um / 1000:.2f} mm" if max(w_um, h_um) >= 1000
                  else f"{w_um:.3g} × {h_um:.3g} µm")
        lines.append(f"{slide.mpp[0]:.3g} µm/px  ({extent})")
    lines.append(f"{slide.level_count} level{'s' if slide.level_count > 1 else ''}, downsample "
                 + ", ".join(f"{lv.downsample:g}" for lv in slide.levels))
    zs = ", ".join(f"{z:+g}" if z else "0" for z in slide.planes_um)
    lines.append(f"{slide.plane_count} plane{'s' if slide.plane_count > 1 else ''}: {zs} µm")
    if slide.display_range:
        lo, hi = slide.display_range
        source = slide.properties.get("display.range_source", "")
        lines.append(f"display: {lo:g} … {hi:g} → 0 … 255" + (f" ({html.escape(source)})" if source else ""))
    lines += [f"<i>{html.escape(note)}</i>" for note in slide.notes]
    return "<br>".join(lines)


class StatusReadouts:
    """The permanent labels of the window's status bar."""

    def __init__(self, bar: QStatusBar):
        self.position = QLabel()
        self.overlay = QLabel(objectName="overlayReadout")  # the overlay's value under the cursor
        self.magnification = QLabel()
        self.tiles = QLabel()
        for w in (self.position, self.overlay, self.magnification, self.tiles):
            w.setMinimumWidth(120)
            bar.addPermanentWidget(w)
