"""File ▸ Import / Export focus map…: through `engine.focusmap.exchange` (GeoJSON for QuPath,
float TIFF, FineFocus .npz), on the window's workers as jobs. A file that cannot be read or
written is one line naming the file in the window's error dialog; a failed import never touches
the map being painted (a good one replaces it as one undo step)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from engine.focusmap import FocusMap
from engine.focusmap.exchange import export_focus_map, import_focus_map

from ..errors import show_error

FILTER = "GeoJSON for QuPath (*.geojson *.json);;Float TIFF (*.tif *.tiff);;FineFocus map (*.npz)"


def _one_line(path, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if str(path) in text else f"{path}: {text}"


class MapExchange:
    """Import / export for the window's paint controller ``paint``."""

    def __init__(self, paint):
        self.paint = paint
        self.window = paint.window

    def _fail(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 10000)
        self.window.error_dialog = show_error(self.window, "FineFocus — focus map", message)

    # ------------------------------------------------------------------ import
    def choose_import(self) -> None:
        if self.paint.map is None:
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Import focus map", "", FILTER)
        if path:
            self.import_from(path)

    def import_from(self, path: str | Path) -> asyncio.Task | None:
        """Read ``path`` on a worker; on success its cells replace the map's (one undo step)."""
        live, slide = self.paint.map, self.paint.slide
        if live is None:
            return None
        path = Path(path)

        async def job(progress):
            reading = self.window.executor.submit(import_focus_map, path, slide.dimensions,
                                                  stride=live.stride, default_um=live.default_um)
            try:
                got: FocusMap = await asyncio.wrap_future(reading)
                if got.stride != live.stride:
                    raise ValueError(f"cells of {got.stride} px, the map being painted has {live.stride} px")
                if self.paint.map is not live:
                    return None                      # another slide meanwhile
                live.replace(got)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — every bad file: one line, the map stays
                self._fail(_one_line(path, exc))
                return None
            self.paint.changed()
            self.window.statusBar().showMessage(
                f"imported {path.name}: {int(got.painted.sum()):,} painted cells (Ctrl+Z takes it back)", 10000)
            return path

        return self.window.jobs.run(f"Importing {path.name}…", job)

    # ------------------------------------------------------------------ export
    def choose_export(self) -> None:
        if self.paint.map is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Export focus map", "focus-map.geojson", FILTER)
        if path:
            self.export_to(path)

    def export_to(self, path: str | Path) -> asyncio.Task | None:
        """Write the map's current version to ``path`` (its suffix names the format) on a worker."""
        live, slide = self.paint.map, self.paint.slide
        if live is None:
            return None
        frozen, path = live.frozen(), Path(path)

        async def job(progress):
            writing = self.window.executor.submit(export_focus_map, frozen, path,
                                                  planes_um=slide.planes_um, mpp=slide.mpp)
            try:
                await asyncio.wrap_future(writing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._fail(_one_line(path, exc))
                return None
            self.window.statusBar().showMessage(f"wrote the focus map to {path}", 10000)
            return path

        return self.window.jobs.run(f"Exporting the focus map to {path.name}…", job)
