"""`PaintController`: painting a focus map in the window.

It owns the slide's `FocusMap` (restored from its autosave when the slide opens), the tools
(QuPath-style single keys: B brush, E eraser, F fill, S smooth, Esc back to pan), the Paint
menu, the dock (`PaintPanel`), the map layer over the slide (`MapLayer`) and the autosave
(`AutosaveDriver`). While a tool is active a left drag paints (`PaintInput`), and each finished
stroke is one undo step (Ctrl+Z / Ctrl+Shift+Z).

The view renders through the map: while the map has painted cells and "Show map" is on, the
window's `RefocusView` asks `mapped_source` for its source and gets a `MappedSource` (a
`FocusMappedSlide` of the current version, the knob's z where nothing is painted, the window's
radiance cache) instead of a `RefocusedSlide`; on a captured plane too (`renders`).

Units: brush size and depth in µm; positions in level-0 px; the brush radius in level-0 px is
half the size divided by the slide's µm per px.
"""
from __future__ import annotations

import asyncio
import math
import threading
import uuid

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QMessageBox, QScrollArea

import numpy as np

from engine.colormaps import LUTS
from engine.focusmap import FocusMap

from ..errors import show_error
from ..focus.focus_control import BEYOND_UM
from . import edits
from .autosave import AutosaveDriver
from .exchange import MapExchange
from .map_layer import CMAP, MapLayer
from .mapped_source import MapSources, versioned
from .mouse import PaintInput
from .panel import PaintPanel

BRUSH, ERASER, FILL, SMOOTH = "brush", "eraser", "fill", "smooth"
#: Tool: (menu text, key, what it does).
TOOLS = {
    BRUSH: ("&Brush", "B", "Paint the depth onto the map"),
    ERASER: ("&Eraser", "E", "Back to unpainted (the knob's focus)"),
    FILL: ("&Fill region", "F", "Drag a lasso (Shift: a rectangle) filled to the depth"),
    SMOOTH: ("&Smooth", "S", "Blur the painted depths under the brush"),
}
#: µm per px assumed for a slide that does not say.
FALLBACK_MPP = 0.25


class PaintController(QObject):
    """Painting for ``window`` (a `MainWindow`); see the module docstring."""

    def __init__(self, window, autosave_folder=None):
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.slide = None
        #: The live map of the open slide (None: no slide).
        self.map: FocusMap | None = None
        self.tool: str | None = None
        self.points: list[tuple[float, float]] = []
        self._rect_fill = False
        self._frozen_key = None
        self._token = uuid.uuid4().hex
        self._frozen: FocusMap | None = None
        self._painted = (None, False)
        self._job: asyncio.Task | None = None
        self.confirm_dialog: QMessageBox | None = None
        self.layer = MapLayer(self.canvas.vb)
        self.input = PaintInput(self.canvas)
        self.sources = MapSources(window.radiance_cache, window.store)
        self.autosaver = AutosaveDriver(lambda: self.map, self, folder=autosave_folder)
        self.exchange = MapExchange(self)
        self.panel = PaintPanel()
        self.dock = QDockWidget("Focus map", window, objectName="paintDock")
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(self.panel)      # the window stays resizable to a small screen
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                              | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        # A tab beside the overlay's dock (three stacked docks would not fit a 600-px window);
        # a paint tool brings it to the front.
        overlay_dock = window.findChild(QDockWidget, "overlayDock")
        if overlay_dock is not None:
            window.tabifyDockWidget(overlay_dock, self.dock)
            overlay_dock.raise_()
        window.resizeDocks([self.dock], [300], Qt.Orientation.Horizontal)   # the slide keeps the room
        self._build_actions()
        self.panel.set_legend(LUTS[CMAP], *self.layer.range_um)
        self.panel.opacityChanged.connect(self.layer.set_opacity)
        self.panel.showChanged.connect(self.set_visible)
        self.panel.size_um.valueChanged.connect(lambda *_: self._update_cursor())
        self.input.started.connect(self._started)
        self.input.moved.connect(self._moved)
        self.input.finished.connect(self._finished)
        self.input.hovered.connect(self._hovered)
        self.autosaver.failed.connect(self._autosave_failed)
        self.autosaver.saved.connect(self._autosaved)
        window.focus.zChanged.connect(self._knob_moved)
        self._update_state()

    # ------------------------------------------------------------------ actions
    def _act(self, menu, text, slot, keys=None, checkable=False, tip=None) -> QAction:
        act = QAction(text, self.window)
        if keys:
            act.setShortcuts([QKeySequence(k) for k in keys])
        act.setCheckable(checkable)
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        act.triggered.connect(lambda *_: slot())
        menu.addAction(act)
        return act

    def _build_actions(self) -> None:
        w = self.window
        menu = w.menuBar().addMenu("&Paint")
        self.menu = menu
        self.tool_group = QActionGroup(self)
        self.pan_action = self._act(menu, "&Pan (no tool)", lambda: self.set_tool(None), ["Esc"], True,
                                    "Back to panning")
        self.tool_group.addAction(self.pan_action)
        self.tool_actions: dict[str, QAction] = {}
        for tool, (text, key, tip) in TOOLS.items():
            act = self._act(menu, text, lambda t=tool: self.set_tool(t), [key], True, tip)
            self.tool_group.addAction(act)
            self.tool_actions[tool] = act
        self.pan_action.setChecked(True)
        menu.addSeparator()
        self.undo_action = self._act(menu, "&Undo stroke", self.undo, ["Ctrl+Z"])
        self.redo_action = self._act(menu, "&Redo stroke", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        menu.addSeparator()
        self.auto_action = self._act(menu, "Focus &everything (best focus)…", self.focus_everything, ["Shift+F"],
                                     tip="Fill the map with each place's best-focus depth (the view if the "
                                         "slide is too large)")
        self.clear_action = self._act(menu, "&Clear the focus map…", self.ask_clear,
                                      tip="Unpaint every cell (Ctrl+Z takes it back)")
        menu.addSeparator()
        self.show_action = self._act(menu, "Show the focus &map", lambda: self.set_visible(self.show_action.isChecked()),
                                     ["M"], True)
        self.show_action.setChecked(True)
        for i, tool in enumerate((None, BRUSH, ERASER, FILL, SMOOTH)):
            self.panel.add_tool(self.pan_action if tool is None else self.tool_actions[tool], i // 3, i % 3)
        self.panel.add_tool(self.undo_action, 2, 0)
        self.panel.add_tool(self.redo_action, 2, 1)
        self.panel.add_tool(self.clear_action, 2, 2)
        self.panel.add_tool(self.auto_action, 3, 0).setText("Focus everything")
        file_menu = w.file_menu
        before = next((a for a in file_menu.actions() if a.text() == "&Quit"), None)
        self.import_action = QAction("&Import focus map…", w)
        self.import_action.triggered.connect(lambda *_: self.exchange.choose_import())
        self.export_action = QAction("E&xport focus map…", w)
        self.export_action.triggered.connect(lambda *_: self.exchange.choose_export())
        for act in (self.import_action, self.export_action):
            file_menu.insertAction(before, act)
        file_menu.insertSeparator(before)
        help_menu = w.menuBar().addMenu("&Help")
        self.shortcuts_action = self._act(help_menu, "&Shortcuts…", self.show_shortcuts, ["F1"])
        self.shortcuts_dialog = None

    def show_shortcuts(self):
        from ..shortcuts import ShortcutsDialog

        self.shortcuts_dialog = ShortcutsDialog(self.window)
        self.shortcuts_dialog.show()
        return self.shortcuts_dialog

    # ------------------------------------------------------------------ slide
    def set_slide(self, slide) -> None:
        """A slide opened: save the old map, restore this slide's (or start an empty one)."""
        self.autosaver.flush()
        self.sources.drop()
        self._cancel_job()
        self.slide = slide
        self.input.cancel()
        self.points = []
        restored, message = self.autosaver.open(slide)
        W, H = slide.dimensions
        self.map = restored if restored is not None else FocusMap(W, H, self.window.focus.z_um)
        self._token = uuid.uuid4().hex                # names this live map in the sources' uids
        if restored is None:
            self.autosaver.adopt(self.map)
        self.map.default_um = float(self.window.focus.z_um)
        lo, hi = min(slide.planes_um) - BEYOND_UM, max(slide.planes_um) + BEYOND_UM
        self.layer.set_range(lo, hi)
        self.panel.set_legend(LUTS[CMAP], lo, hi)
        self.panel.set_depth_range(lo, hi)
        self.panel.depth_um.setValue(self.window.focus.z_um)
        self.changed(reroute=restored is not None)
        if message:  # after re-rendering, whose own messages would hide it
            self.window.statusBar().showMessage(message, 15000)

    @property
    def um_per_px(self) -> float:
        mpp = getattr(self.slide, "mpp", None)
        return float(mpp[0]) if mpp else FALLBACK_MPP

    @property
    def radius_px(self) -> float:
        """The brush radius in level-0 px (half the size in µm)."""
        return self.panel.size_um.value() / 2.0 / self.um_per_px

    # ------------------------------------------------------------------ rendering through the map
    def renders(self) -> bool:
        """True when the view shows the slide through the map (painted cells and "Show map")."""
        fm = self.map
        if fm is None or not self.show_action.isChecked():
            return False
        key = (id(fm), fm.version)
        if self._painted[0] != key:
            self._painted = (key, bool(fm.painted.any()))
        return self._painted[1]

    def mapped_source(self, slide, z_um: float, blend_only: bool):
        """For `RefocusView`: the source showing ``slide`` through the current map version, the
        knob's ``z_um`` (µm) where nothing is painted; None when the view does not render the map."""
        if slide is not self.slide or not self.renders():
            return None
        fm = self.map
        key = (self._token, fm.version, float(z_um))
        if key != self._frozen_key:
            self._frozen = versioned(fm, z_um, self._token)
            self._frozen_key = key
        return self.sources.source(slide, self._frozen, key, blend_only)

    def changed(self, reroute: bool = True) -> None:
        """The map changed (a stroke, undo, an import…): redraw it and re-render the view."""
        self.layer.show_map(self.map, self.show_action.isChecked())
        self._update_state()
        if reroute and self.slide is not None:
            if not self.renders():
                self.sources.drop()
            self.window._focus_changed(self.window.focus.z_um)

    def set_visible(self, visible: bool) -> None:
        """Show or hide the map (and render the view through it or not)."""
        for w in (self.show_action, self.panel.show_map):
            if w.isChecked() != visible:
                w.blockSignals(True)
                w.setChecked(visible)
                w.blockSignals(False)
        self.changed()

    def _update_state(self) -> None:
        fm = self.map
        self.undo_action.setEnabled(fm is not None and fm.can_undo)
        self.redo_action.setEnabled(fm is not None and fm.can_redo)
        has_slide = fm is not None
        for act in (self.clear_action, self.import_action, self.export_action, *self.tool_actions.values()):
            act.setEnabled(has_slide)
        self.auto_action.setEnabled(has_slide and self.slide.plane_count > 1)
        if fm is None:
            self.panel.state.setText("Open a slide to paint its focus map.")
            return
        cells = int(fm.painted.sum())
        area_mm2 = cells * (fm.stride * self.um_per_px) ** 2 / 1e6
        text = (f"{cells:,} cells painted ({area_mm2:.3g} mm²)" if cells else
                "Nothing painted: the view follows the knob. B paints.")
        if self.autosaver.autosave is not None:
            text += f"\nautosave: {self.autosaver.autosave.folder}"
        self.panel.state.setText(text)

    # ------------------------------------------------------------------ tools
    def set_tool(self, tool: str | None) -> None:
        """Make ``tool`` (BRUSH, ERASER, FILL, SMOOTH; None: pan) the active one."""
        if tool is not None and tool not in TOOLS:
            raise ValueError(f"unknown paint tool {tool!r}")
        self.tool = tool if self.map is not None else None
        self.input.cancel()
        self.points = []
        self.layer.show_path([], None, None)
        self.input.active = self.tool is not None
        (self.pan_action if self.tool is None else self.tool_actions[self.tool]).setChecked(True)
        self.canvas.viewport().setCursor(Qt.CursorShape.CrossCursor if self.tool else Qt.CursorShape.ArrowCursor)
        self._update_cursor()
        if self.tool is not None:
            self.dock.raise_()
            self.window.statusBar().showMessage(
                f"{TOOLS[self.tool][0].replace('&', '')}: {TOOLS[self.tool][2]}. Esc: back to pan.", 5000)

    def _hovered(self, x: float, y: float) -> None:
        self._last_hover = (x, y)
        self._update_cursor()

    def _update_cursor(self) -> None:
        pos = getattr(self, "_last_hover", None)
        if self.tool in (BRUSH, ERASER, SMOOTH) and pos is not None:
            self.layer.show_cursor(pos[0], pos[1], self.radius_px)
        else:
            self.layer.show_cursor(None)

    def _knob_moved(self, z_um: float) -> None:
        self.panel.depth_um.setValue(z_um)
        if self.map is not None:
            self.map.default_um = float(z_um)

    # ------------------------------------------------------------------ strokes
    def _started(self, x: float, y: float, modifiers) -> None:
        if self.tool is None or self.map is None:
            return
        self.points = [(x, y)]
        self._rect_fill = self.tool == FILL and bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        self._preview()

    def _moved(self, x: float, y: float) -> None:
        if not self.points:
            return
        if self._rect_fill:
            self.points = [self.points[0], (x, y)]
        elif self.tool == FILL:
            self.points.append((x, y))
        else:  # keep the dabs at most a quarter radius apart, so a fast drag leaves no gaps
            px, py = self.points[-1]
            step = max(self.radius_px / 4, 1e-6)
            n = int(math.hypot(x - px, y - py) // step)
            self.points.extend((px + (x - px) * k / (n + 1), py + (y - py) * k / (n + 1)) for k in range(1, n + 1))
            self.points.append((x, y))
        self._hovered(x, y)
        self._preview()

    def _preview(self) -> None:
        if self.tool == FILL:
            pts = self.points
            if self._rect_fill and len(pts) == 2:
                (xa, ya), (xb, yb) = pts
                pts = [(xa, ya), (xb, ya), (xb, yb), (xa, yb)]
            self.layer.show_path(pts, None, self.panel.depth_um.value(), closed=True)
        else:
            z = self.panel.depth_um.value() if self.tool == BRUSH else None
            self.layer.show_path(self.points, self.radius_px, z)

    def _finished(self, x: float, y: float) -> None:
        if not self.points:
            return
        self._moved(x, y)
        pts, self.points = self.points, []
        self.layer.show_path([], None, None)
        self.apply_stroke(self.tool, pts)

    def apply_stroke(self, tool: str, points) -> bool:
        """Apply one stroke of ``tool`` through ``points`` (level-0 px) with the panel's brush;
        one undo step. True when the map changed."""
        fm = self.map
        if fm is None:
            return False
        before = fm.version
        z, r = float(self.panel.depth_um.value()), self.radius_px
        if tool == BRUSH:
            fm.paint(points, r, z, self.panel.hardness_fraction)
        elif tool == ERASER:
            fm.erase(points, r)
        elif tool == SMOOTH:
            edits.smooth_under(fm, points, r)
        elif tool == FILL:
            edits.fill_polygon(fm, points, z)
        if fm.version == before:
            return False
        self.changed()
        return True

    def undo(self) -> bool:
        if self.map is None or self.input.stroking or not self.map.undo():
            return False
        self.changed()
        return True

    def redo(self) -> bool:
        if self.map is None or self.input.stroking or not self.map.redo():
            return False
        self.changed()
        return True

    # ------------------------------------------------------------------ clear
    def ask_clear(self) -> QMessageBox | None:
        """Ask before clearing (non-modal); Yes clears (one undo step)."""
        if self.map is None or not self.map.painted.any():
            self.window.statusBar().showMessage("The focus map is empty.", 5000)
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "FineFocus — clear the focus map",
                          f"Unpaint all {int(self.map.painted.sum()):,} painted cells? (Ctrl+Z takes it back.)",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.window)
        box.setObjectName("confirmClear")
        box.accepted.connect(self.clear)
        box.open()
        self.confirm_dialog = box
        return box

    def clear(self) -> bool:
        if self.map is None or not edits.clear(self.map):
            return False
        self.changed()
        self.window.statusBar().showMessage("Cleared the focus map (Ctrl+Z takes it back).", 8000)
        return True

    # ------------------------------------------------------------------ focus everything
    def auto_region(self) -> tuple[int, int, int, int]:
        """The level-0 region "Focus everything" fills: the whole slide when its planes fit in
        `engine.focusmap.auto.MAX_AUTO_MPX`, else the visible part."""
        from engine.focusmap.auto import MAX_AUTO_MPX

        W, H = self.slide.dimensions
        if W * H * self.slide.plane_count <= MAX_AUTO_MPX * 1e6 * 0.8:
            return 0, 0, W, H
        x, y, w, h = self.canvas.view_rect()
        x0, y0 = max(0, int(x)), max(0, int(y))
        return x0, y0, max(0, min(W, int(math.ceil(x + w))) - x0), max(0, min(H, int(math.ceil(y + h))) - y0)

    def focus_everything(self) -> asyncio.Task | None:
        """Fill the map from the slide's best-focus depths (`engine.focusmap.auto`) on a worker,
        as a job with progress and Cancel; one undo step when it lands."""
        from engine.focusmap.auto import best_focus_fill

        fm, slide = self.map, self.slide
        if fm is None or slide.plane_count < 2:
            return None
        region = self.auto_region()
        start = fm.values.copy()
        work = FocusMap(fm.width, fm.height, fm.default_um, fm.stride, start.copy())
        stop = threading.Event()
        loop = asyncio.get_running_loop()

        async def job(progress):
            def report(f):
                loop.call_soon_threadsafe(progress, f)

            running = self.window.executor.submit(best_focus_fill, slide, work, region,
                                                  progress=report, cancelled=stop.is_set)
            try:
                await asyncio.wrap_future(running)
            except asyncio.CancelledError:
                stop.set()
                raise
            except Exception as exc:  # noqa: BLE001 — too large, one plane…: say so
                self.window.statusBar().showMessage(f"Focus everything: {exc}", 10000)
                self.window.error_dialog = show_error(self.window, "FineFocus — focus everything", str(exc))
                return None
            if self.map is not fm:
                return None
            s = fm.stride
            changed = ~((work.values == start) | (np.isnan(work.values) & np.isnan(start)))
            grid = work.values.copy()
            grid[~changed] = float("nan")
            fm.fill(grid, origin=(s / 2, s / 2), spacing=s, region=region)
            self.changed()
            self.window.statusBar().showMessage(
                f"Focus everything: {int(changed.sum()):,} cells set to their best focus (Ctrl+Z takes it back)", 10000)
            return region

        self._job = self.window.jobs.run("Finding the best focus…", job)
        return self._job

    def _cancel_job(self) -> None:
        if self._job is not None and not self._job.done():
            self._job.cancel()
        self._job = None

    # ------------------------------------------------------------------ autosave
    def _autosave_failed(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 15000)

    def _autosaved(self, version: int) -> None:
        pass

    def close(self) -> None:
        """The window is closing: save the map now."""
        self._cancel_job()
        self.autosaver.close()
