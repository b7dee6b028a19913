"""`MainWindow`: the slide canvas with the focus control, the overview, the status bar, menus
(open, recent files, built-in slide), drag and drop, and an error dialog for every bad file.

View ▸ Overlay puts a computed source over the slide (focus heatmaps, the best-focus depth map,
fused IQA: see app/overlays); its dock has the opacity and the legend, the status bar its value
under the cursor.

Opening a slide runs on a worker (as a job with Cancel); a bad file gives a non-modal error
dialog and the window stays as it was.
"""
from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QToolBar,
                               QVBoxLayout, QWidget)

from engine.slides.base import Slide
from engine.tiles import TileStore

from .canvas import SlideCanvas
from .canvas.thumbnail import whole_slide_image
from .errors import describe, show_error
from .focus import FocusControl
from .focus.actions import FocusExtras
from .focus.refocus_view import RefocusView
from .jobs import JobIndicator
from .overlays import OverlayController, OverlayMenu, OverlayPanel, overlay_kind, overlay_kinds
from .overview import Overview
from .paint import PaintController
from .recent import RecentFiles
from .status import StatusReadouts, describe_slide, format_magnification, format_position

FILE_FILTER = ("Slides (*.svs *.tif *.tiff *.ndpi *.vms *.vmu *.scn *.mrxs *.svslide *.bif *.dcm "
               "*.ome.tif *.ome.tiff *.czi *.zarr zarr.json .zattrs *.png *.jpg *.jpeg);;All files (*)")


def _close_result(future) -> None:
    """Close the slide a finished (abandoned) open produced, if it produced one."""
    if not future.cancelled() and future.exception() is None and future.result() is not None:
        future.result().close()


def refocus_available() -> bool:
    """True when the refocusing weights ship (resources/weights/refocus.pt): the focus slider is
    then continuous; otherwise it steps between captured planes."""
    from engine.resources import REFOCUS_WEIGHTS

    return REFOCUS_WEIGHTS.exists()


def open_slide(path):
    """The engine's `open_slide` (imported late: the slides package is being filled in)."""
    from engine.slides import open_slide as _open

    return _open(path)


class MainWindow(QMainWindow):
    """The FineFocus viewer window."""

    def __init__(self, store: TileStore | None = None, settings: QSettings | None = None,
                 radiance_bytes: int | None = None, radiance_cap_bytes: int | None = None):
        """``radiance_bytes`` bounds the radiance kept off the view (default 1 GiB) and
        ``radiance_cap_bytes`` the view's own (default: half the available memory; see
        `engine.refocus.radiance_budget`)."""
        super().__init__()
        self.setWindowTitle("FineFocus")
        self.resize(1200, 800)
        self.setAcceptDrops(True)
        self.store = store or TileStore()
        #: Threads for opening files and other one-off work (tiles have the store's pool).
        self.executor = ThreadPoolExecutor(2, thread_name_prefix="finefocus-job")
        self.settings = settings or QSettings("FineFocus", "FineFocus")
        self.recent = RecentFiles(self.settings)
        self.slide: Slide | None = None
        self.error_dialog: QMessageBox | None = None
        self._tile_error_shown = False
        self._overview_task: asyncio.Task | None = None

        self.canvas = SlideCanvas(self.store, self)
        self.setCentralWidget(self.canvas)
        self.focus = FocusControl()
        #: What the view shows off the captured planes, its radiance cache and its progress.
        self.refocus_view = RefocusView(self.canvas, self.focus, lambda m: self.statusBar().showMessage(m, 10000),
                                        self, radiance_bytes, radiance_cap_bytes)
        bar = QToolBar("Focus", self, objectName="focusToolbar", movable=False)
        bar.addWidget(self.focus)
        self.addToolBar(Qt.ToolBarArea.BottomToolBarArea, bar)
        self.overview = Overview()
        self.info = QLabel(wordWrap=True, objectName="slideInfo")
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.addWidget(self.overview)
        column.addWidget(self.info)
        column.addStretch(1)
        dock = QDockWidget("Overview", self, objectName="overviewDock")
        dock.setWidget(panel)
        dock.setMinimumWidth(260)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.overlays = OverlayController(self.canvas, self.executor, self)
        self.overlay_panel = OverlayPanel()
        opacity = self.settings.value("overlay/opacity_percent", None)
        if opacity is not None:
            self.overlay_panel.opacity.setValue(int(opacity))
        self.canvas.set_overlay_opacity(self.overlay_panel.opacity_fraction)
        overlay_dock = QDockWidget("Overlay", self, objectName="overlayDock")
        overlay_dock.setWidget(self.overlay_panel)
        overlay_dock.setFeatures(dock.features())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, overlay_dock)
        #: The overlay "O" shows again (remembered across sessions).
        self._last_overlay_key: str | None = self.settings.value("overlay/last", None) or None
        self.readouts = StatusReadouts(self.statusBar())
        self.jobs = JobIndicator()
        self.statusBar().addWidget(self.jobs)
        self._build_menus()
        #: Painting a focus map (app/paint): tools, its layer, autosave; the view renders through it.
        self.paint = PaintController(self)
        self.refocus_view.mapped_source = self.paint.mapped_source

        self.canvas.viewChanged.connect(self._view_changed)
        self.canvas.cursorMoved.connect(self._cursor_moved)
        self.canvas.tileFailed.connect(self._tile_failed)
        self.canvas.loading.connect(self._loading)
        self.overview.navigate.connect(self._navigate)
        self.overlays.changed.connect(self._overlay_changed)
        self.overlays.readout.connect(self.readouts.overlay.setText)
        self.overlays.failed.connect(self._overlay_failed)
        self.overlays.progress.connect(
            lambda f: self.overlay_panel.set_state(f"preparing… {100 * f:.0f} %" if f < 1 else "preparing… (fitting)"))
        self.overlay_panel.opacityChanged.connect(self._opacity_changed)
        self.canvas.settled.connect(self._overlay_progress)

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        file_menu = self.file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open…", self.choose_file, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(file_menu, "Open the &built-in slide", lambda: self.open_path(None))
        file_menu.addSeparator()
        file_menu.setToolTipsVisible(True)
        self.aif_action = self._action(file_menu, "Export &all-in-focus snapshot of the view…",
                                       self.choose_all_in_focus_export)
        self.aif_action.setEnabled(False)
        self.aif_action.setToolTip("Open a slide with several focal planes first")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view = self.menuBar().addMenu("&View")
        self._action(view, "Zoom &in", lambda: self.canvas.zoom(2.0), [QKeySequence("+"), QKeySequence("=")])
        self._action(view, "Zoom &out", lambda: self.canvas.zoom(0.5), QKeySequence("-"))
        self._action(view, "&Fit slide", self.canvas.fit, [QKeySequence("Home"), QKeySequence("Ctrl+0")])
        view.addSeparator()
        self._action(view, "Focus &up (next plane)", self.focus.step_up, QKeySequence("PgUp"))
        self._action(view, "Focus &down (previous plane)", self.focus.step_down, QKeySequence("PgDown"))
        self._action(view, "Fine focus up (+0.1 µm)", self.focus.fine_up, QKeySequence("]"))
        self._action(view, "Fine focus down (−0.1 µm)", self.focus.fine_down, QKeySequence("["))
        #: Coarse steps, scan focus, snap, typed z, Ctrl+wheel; the knob's changes reach
        #: `_focus_changed` through it (coalesced while dragging: app/focus/dispatch.py).
        self.focus_extras = FocusExtras(self, view, self._focus_changed)
        view.addSeparator()
        self.overlay_menu = OverlayMenu(view.addMenu("O&verlay"), self.set_overlay,
                                        lambda: self.overlays.kind.key if self.overlays.kind else None,
                                        lambda: self.slide)
        self._action(view, "Show / hide the o&verlay", self.toggle_overlay, QKeySequence("O"))
        # The overlay menu lists the classical metrics, and the first turn of the focus knob off a
        # plane needs the refocusing model (it imports torch, ~2 s): import both now, off the UI
        # thread, so neither freezes the window when first used.
        self.executor.submit(importlib.import_module, "engine.fqa.metrics")
        if refocus_available():
            self.executor.submit(_warm_refocus)
        self._fill_recent()

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if isinstance(shortcut, list):
            act.setShortcuts(shortcut)
        elif shortcut is not None:
            act.setShortcut(shortcut)
        act.triggered.connect(lambda *_: slot())
        menu.addAction(act)
        return act

    # ------------------------------------------------------------------ overlays
    def set_overlay(self, key: str | None) -> None:
        """Show the overlay ``key`` (see app/overlays/registry.py) over the slide; None: none."""
        kind = None if key is None else overlay_kind(key)
        if kind is not None:
            self._last_overlay_key = key
            self.settings.setValue("overlay/last", key)
        self.overlays.set_kind(kind)

    def toggle_overlay(self) -> None:
        """Hide the overlay, or show the last one again (the first FocusLiteNN heatmap at first)."""
        if self.overlays.kind is not None:
            self.set_overlay(None)
            return
        key = self._last_overlay_key
        kinds = [k for k in overlay_kinds() if k.available(self.slide)]
        if key is None or not any(k.key == key for k in kinds):
            key = kinds[0].key if kinds else None
        if key is not None:
            self.set_overlay(key)

    def _opacity_changed(self, fraction: float) -> None:
        self.canvas.set_overlay_opacity(fraction)
        self.settings.setValue("overlay/opacity_percent", round(100 * fraction))

    def _overlay_changed(self) -> None:
        kind = self.overlays.kind
        self.overlay_panel.show_overlay(kind.title if kind else None, self.overlays.source, self.overlays.preparing)
        self.overlay_menu.sync()
        self._overlay_progress()

    def _overlay_progress(self, *_) -> None:
        """The dock's state line: preparing, or how many of the view's patches are scored (at a
        coarse zoom: of the sampled patches the estimate is made of)."""
        if self.overlays.preparing:
            self.overlay_panel.set_state("preparing…")
            return
        if self.canvas.overlay_source is None:
            self.overlay_panel.set_state("")
            return
        work, settled = self.overlays.work(), self.canvas.overlay_settled()
        if work.estimated:
            if settled and work.complete and work.shown_step <= work.step:
                text = (f"estimate: {work.total:,} sampled patches, one per {work.step}×{work.step} "
                        "(zoom in for every patch)")
            else:
                text = (f"estimate from sampled patches, refining: {work.done:,} / {work.total:,} "
                        "patches scored…")
        elif not settled:
            text = (f"computing the visible tiles: {work.done:,} / {work.total:,} patches scored…"
                    if work.total else "computing the visible tiles…")
        else:
            text = ""
        self.overlay_panel.set_state(text)

    def _overlay_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        self.error_dialog = show_error(self, "FineFocus — overlay", message)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for path in paths:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda *_, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(paths))

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open slide", "", FILE_FILTER)
        if path:
            self.open_path(path)

    # ------------------------------------------------------------------ exports
    def choose_all_in_focus_export(self) -> None:
        if self.slide is None or not self.aif_action.isEnabled():
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export all-in-focus snapshot", "all-in-focus.png",
                                              "PNG image (*.png)")
        if path:
            self.export_all_in_focus(path)

    def export_all_in_focus(self, path: str | Path) -> asyncio.Task:
        """Write the visible part of the slide, every place at its estimated best focus, to the PNG
        ``path`` (level-0 resolution; `engine.export.all_in_focus`). Runs on a worker with Cancel;
        a failure (one plane, too large a view, an unwritable file) opens the error dialog."""
        import threading

        from engine.export.all_in_focus import all_in_focus_region

        slide, path = self.slide, Path(path)
        x, y, w, h = self.canvas.view_rect()
        W, H = slide.dimensions
        x0, y0 = max(0, int(x)), max(0, int(y))
        region = (x0, y0, min(W, int(x + w + 0.999)) - x0, min(H, int(y + h + 0.999)) - y0)
        stop = threading.Event()
        cache = self.radiance_cache()

        def work():
            if region[2] <= 0 or region[3] <= 0:
                raise ValueError("the view shows no part of the slide")
            result = all_in_focus_region(slide, region, cache=cache, cancelled=stop.is_set)
            from PIL import Image

            if stop.is_set():
                raise InterruptedError("all-in-focus export cancelled")
            try:
                Image.fromarray(result.pixels).save(path)
            except OSError as exc:
                raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from exc
            return result.describe()

        async def job(progress):
            running = self.executor.submit(work)
            try:
                what = await asyncio.wrap_future(running)
            except asyncio.CancelledError:
                stop.set()
                raise
            except Exception as exc:  # a clear dialog; the window stays up
                self.statusBar().showMessage(str(exc), 10000)
                self.error_dialog = show_error(self, "FineFocus — cannot export", str(exc))
                return None
            self.statusBar().showMessage(f"wrote {path}: {region[2]}×{region[3]} px, {what}", 10000)
            return path

        return self.jobs.run(f"Exporting all-in-focus {region[2]}×{region[3]} px…", job)

    # ------------------------------------------------------------------ opening
    def open_path(self, path: str | Path | None) -> asyncio.Task:
        """Open ``path`` (None: the built-in slide) on a worker; on success show it, on failure
        show the error dialog and keep the current slide. Returns the job's task."""
        name = "the built-in slide" if path is None else Path(path).name or str(path)

        async def job(progress):
            opening = self.executor.submit(open_slide, None if path is None else str(path))
            try:
                slide = await asyncio.wrap_future(opening)
            except asyncio.CancelledError:
                # Superseded by a newer open: the slide this one still opens is closed when it
                # arrives, not left holding its file until garbage collection.
                opening.add_done_callback(_close_result)
                raise
            except Exception as exc:  # every bad file: a dialog, the window stays up
                self.show_error(describe(path, exc))
                return None
            self.set_slide(slide)
            if path is not None:
                self.recent.add(str(Path(path).resolve()) if Path(path).exists() else str(path))
                self._fill_recent()
            return slide

        return self.jobs.run(f"Opening {name}…", job)

    def set_slide(self, slide: Slide) -> None:
        """Show ``slide`` (already open)."""
        old, self.slide = self.slide, slide
        self._tile_error_shown = False
        plane = slide.nearest_plane(0.0)  # open at the nominal focus (z = 0 µm), as scanned
        self.refocus_view.set_slide(slide)
        multi = slide.plane_count > 1
        self.aif_action.setEnabled(multi)
        self.aif_action.setToolTip("Every place at its best focus, from the slide's focal planes" if multi else
                                   "Needs a slide with several focal planes: this one has one")
        self.focus.set_planes(slide.planes_um, continuous=refocus_available())  # at that plane; emits nothing
        self.info.setText(describe_slide(slide))
        self.canvas.set_slide(slide, plane)
        self.overlays.set_slide(slide, plane)
        self.paint.set_slide(slide)  # restores its autosaved focus map
        title = slide.path or "built-in slide"
        self.setWindowTitle(f"FineFocus — {Path(title).name if slide.path else title}")
        self.overview.set_thumbnail(None, slide.dimensions)  # never the old slide's picture meanwhile
        self._load_overview()
        if old is not None and old is not slide:
            self.store.forget(old)
            old.close()

    def show_error(self, message: str) -> QMessageBox:
        """The non-modal error dialog (also kept as ``self.error_dialog`` for tests)."""
        self.statusBar().showMessage(message, 10000)
        self.error_dialog = show_error(self, "FineFocus — cannot open", message)
        return self.error_dialog

    # ------------------------------------------------------------------ reactions
    def _focus_changed(self, z_um: float) -> None:
        """Show the slide at ``z_um``: a captured plane as it is, any other z refocused by the
        model (the overview keeps the plane it was opened at; overlays follow the nearest plane)."""
        slide = self.slide
        if slide is None:
            return
        plane = self.focus.plane
        if self.focus.on_plane and not self.paint.renders():  # a painted map renders on planes too
            self.refocus_view.on_plane()
            self.canvas.set_plane(plane)
        else:
            self.refocus_view.show(z_um)
        self.overlays.set_plane(plane)

    def radiance_cache(self):
        """The window's radiance cache (made on first use; cleared when another slide opens): the
        focus knob and the exports share the encoded fields of the open slide."""
        return self.refocus_view.radiance_cache()

    def _load_overview(self) -> None:
        slide, plane = self.slide, self.focus.plane
        if self._overview_task is not None:
            self._overview_task.cancel()

        async def load():
            img = await whole_slide_image(self.store, slide, plane, executor=self.executor)
            if slide is self.slide:
                self.overview.set_thumbnail(img, slide.dimensions)

        self._overview_task = asyncio.get_running_loop().create_task(load())
        self._overview_task.add_done_callback(_log_failure)

    def overview_ready(self) -> bool:
        """True when the overview thumbnail of the current slide and plane is drawn (or failed)."""
        return self._overview_task is None or self._overview_task.done()

    def _view_changed(self) -> None:
        if self.slide is None:
            return
        self.refocus_view.view_changed()
        x, y, w, h = self.canvas.view_rect()
        self.overview.set_view(x, y, w, h)
        self.readouts.magnification.setText(
            format_magnification(self.slide, self.canvas.screen_px_per_level0_px(), self.canvas.level))

    def _loading(self, n: int) -> None:
        self.readouts.tiles.setText(f"loading {n} tiles…" if n else "")
        self._overlay_progress()

    def _cursor_moved(self, x: float, y: float) -> None:
        if self.slide is not None:
            self.readouts.position.setText(format_position(x, y, self.slide.mpp))
            self.overlays.cursor_at(x, y)

    def _tile_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        if not self._tile_error_shown:  # one dialog per slide, not one per broken tile
            self._tile_error_shown = True
            self.error_dialog = show_error(self, "FineFocus — cannot read", message)

    def _navigate(self, x: float, y: float) -> None:
        vx, vy, w, h = self.canvas.view_rect()
        self.canvas.pan(x - (vx + w / 2), y - (vy + h / 2))

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, e):  # noqa: N802
        if any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e):  # noqa: N802
        files = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if files:
            e.acceptProposedAction()
            self.open_path(files[0])

    def closeEvent(self, e):  # noqa: N802
        """Cancel all work at once: queued tiles and jobs are dropped, running tile reads and
        overlay builds are told to stop at their next check (the store refuses new work); the
        focus map is saved first."""
        self.paint.close()
        self.canvas.stop()
        self.jobs.cancel()
        self.overlays.close()
        self.store.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(e)


def _warm_refocus() -> None:
    """Import the refocusing model and load its weights (off the UI thread, at start)."""
    module = importlib.import_module("engine.refocus.refocused_slide")
    module.shipped_model()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        import logging

        logging.getLogger(__name__).warning("overview failed: %s", task.exception())
