"""`MapLayer`: the focus map drawn over the slide — a translucent colour image of the painted
cells (unpainted cells transparent), the brush outline under the cursor and the path of the
stroke being drawn. All items live in the canvas's ViewBox, in level-0 px.

Colours: ``engine.colormaps.LUTS[CMAP]`` from ``vmin`` to ``vmax`` µm (the knob's travel), the
same scale the legend shows. Only the bounding box of the painted cells is turned into an image.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem

from engine.colormaps import LUTS
from engine.focusmap import FocusMap

#: Above the slide's tiles (z 10..) and the overlay's (1000..).
MAP_Z = 2000
CMAP = "viridis"
#: Opacity of the map's colours by default (0..1).
DEFAULT_OPACITY = 0.45


def colour_cells(values: np.ndarray, vmin: float, vmax: float, alpha: int = 255) -> np.ndarray:
    """(rows, cols, 4) uint8 RGBA of depth cells ``values`` (µm; NaN: transparent)."""
    lut = LUTS[CMAP]
    finite = np.isfinite(values)
    t = np.clip((np.where(finite, values, vmin) - vmin) / max(vmax - vmin, 1e-9), 0, 1)
    idx = np.rint(t * (len(lut) - 1)).astype(np.intp)
    rgba = np.empty(values.shape + (4,), np.uint8)
    rgba[..., :3] = lut[idx]
    rgba[..., 3] = np.where(finite, alpha, 0)
    return rgba


class MapLayer:
    """The map's items in ``viewbox``."""

    def __init__(self, viewbox: pg.ViewBox):
        self.viewbox = viewbox
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(MAP_Z)
        self.image.setOpacity(DEFAULT_OPACITY)
        self.image.hide()
        viewbox.addItem(self.image, ignoreBounds=True)
        self.cursor = QGraphicsEllipseItem()
        self.cursor.setPen(pg.mkPen(QColor(255, 255, 255), width=1.5, cosmetic=True))
        self.cursor.setZValue(MAP_Z + 2)
        self.cursor.hide()
        viewbox.addItem(self.cursor, ignoreBounds=True)
        self.path = QGraphicsPathItem()
        self.path.setZValue(MAP_Z + 1)
        self.path.hide()
        viewbox.addItem(self.path, ignoreBounds=True)
        self.range_um = (-3.0, 3.0)
        #: The painted cells' bounding box drawn now, (r0, c0, r1, c1), or None.
        self.box: tuple[int, int, int, int] | None = None

    # ------------------------------------------------------------------ the map
    def set_range(self, vmin: float, vmax: float) -> None:
        """The depths (µm) at the two ends of the colour scale."""
        self.range_um = (float(vmin), float(vmax))

    def show_map(self, fm: FocusMap | None, visible: bool) -> None:
        """Draw the painted cells of ``fm`` (None or not ``visible``: nothing)."""
        painted = None if fm is None else fm.painted
        if fm is None or not visible or not painted.any():
            self.image.hide()
            self.box = None
            return
        rr = np.flatnonzero(painted.any(1))
        cc = np.flatnonzero(painted.any(0))
        r0, r1, c0, c1 = int(rr[0]), int(rr[-1]) + 1, int(cc[0]), int(cc[-1]) + 1
        s = fm.stride
        self.image.setImage(colour_cells(fm.values[r0:r1, c0:c1], *self.range_um), autoLevels=False,
                            levels=(0, 255))
        self.image.setRect(QRectF(c0 * s, r0 * s, (c1 - c0) * s, (r1 - r0) * s))
        self.image.show()
        self.box = (r0, c0, r1, c1)

    def set_opacity(self, opacity: float) -> None:
        self.image.setOpacity(max(0.0, min(1.0, opacity)))

    # ------------------------------------------------------------------ the brush
    def show_cursor(self, x: float | None, y: float | None = None, radius: float = 0.0) -> None:
        """The brush outline at (x, y) with ``radius`` level-0 px; None hides it."""
        if x is None or radius <= 0:
            self.cursor.hide()
            return
        self.cursor.setRect(QRectF(x - radius, y - radius, 2 * radius, 2 * radius))
        self.cursor.show()

    def show_path(self, points, radius: float | None, z_um: float | None, closed: bool = False) -> None:
        """The stroke being drawn: a band ``radius`` level-0 px wide each side of ``points``
        coloured as its depth ``z_um`` (None: grey, the eraser), or with ``radius`` None the
        outline of a region (``closed``: a lasso); no points: hide."""
        if not points:
            self.path.hide()
            return
        p = QPainterPath(QPointF(*points[0]))
        for pt in points[1:]:
            p.lineTo(QPointF(*pt))
        if len(points) == 1:
            p.lineTo(QPointF(points[0][0] + 0.01, points[0][1]))
        if closed:
            p.closeSubpath()
        if z_um is None:
            colour = QColor(200, 200, 200, 140)
        else:
            r, g, b, _ = colour_cells(np.array([[z_um]], np.float32), *self.range_um)[0, 0]
            colour = QColor(int(r), int(g), int(b), 140)
        if radius is None:
            pen = pg.mkPen(QColor(255, 255, 255), width=2, cosmetic=True, style=Qt.PenStyle.DashLine)
            self.path.setBrush(QBrush(colour))
        else:
            pen = QPen(colour, 2 * radius)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            self.path.setBrush(QBrush())
        self.path.setPen(pen)
        self.path.setPath(p)
        self.path.show()
