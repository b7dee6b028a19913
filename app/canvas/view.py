"""`SlideCanvas`: smooth tiled pan and zoom over a slide, fed by the tile store.

A pyqtgraph ViewBox with locked aspect and y pointing down, so view coordinates are level-0 px.
Each view change (pan, zoom, resize, plane) takes a new store generation, shows at once what is
cached (or a coarser stand-in), fetches the rest on the store's workers and awaits those futures
as asyncio tasks on the running (qasync) loop; pixels are applied on the UI thread. Queued
tiles the new view no longer needs are cancelled. The UI thread never reads a tile itself.

An overlay (``set_overlay``: a computed source with the slide's geometry, e.g. a focus heatmap)
is a second layer of tiles above the slide's. Its tiles are the same grid cells of the same
level and take the same walk in the same generation: the slide's tiles are asked for first, the
overlay's next, and one ``cancel_superseded`` drops the queued tiles of both that the view no
longer needs.

A computed source whose tiles take long (a refocused view) can name the captured-plane tiles its
stand-in is made of (``stand_in_sources(request) -> [(slide, plane)]``). Those are fetched first,
on a separate pool of readers (``plane_store``, sharing the store's cache), so the plane nearest
z (or the blend of the two around it) shows at full resolution within a plane read, never queued
behind seconds of model work, and never a coarse flat square where real pixels exist.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Future

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QPointF, QRectF, QTimer, Signal

from engine.slides.base import Slide
from engine.tiles import (TileRequest, TileStore, level_for_scale, tile_rect_level0, tile_size_for,
                          visible_tiles)

from .busy_badge import BusyBadge
from .overlay_layer import OverlayLayer
from .scalebar import ScaleBar
from .tile_layer import TileLayer, same_geometry

#: Closest zoom: this many screen px per level-0 px.
MAX_SCREEN_PX_PER_PX = 16.0


class SlideCanvas(pg.GraphicsView):
    """The slide view. Signals: ``viewChanged()``, ``cursorMoved(x, y)`` in level-0 px,
    ``settled()`` when every visible tile (slide and overlay) shows its exact pixels,
    ``tileFailed(str)``, ``loading(n)`` with the number of tiles this canvas is waiting for."""

    viewChanged = Signal()
    cursorMoved = Signal(float, float)
    settled = Signal()
    tileFailed = Signal(str)
    loading = Signal(int)

    def __init__(self, store: TileStore, parent=None):
        super().__init__(parent, background=(43, 43, 43))
        self.store = store
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.setCentralItem(self.vb)
        self.layer = TileLayer(self.vb, store)
        self.overlay = OverlayLayer(self.vb, store)
        #: Readers of captured-plane tiles for stand-ins, apart from the store's (computing) workers;
        #: same cache, so `best_available` finds what they read.
        self.plane_store = TileStore(workers=2, cache=store.cache)
        self.scale_bar = ScaleBar(self)
        #: "Refocusing… n / m blocks" over the view while its refocused pixels are computed.
        self.busy = BusyBadge(self)
        self.slide: Slide | None = None
        self.plane = 0
        self.generation = 0
        self._inflight: dict[TileRequest, Future] = {}
        self._failed: set[TileRequest] = set()  # not asked again for this slide
        self._tasks: set[asyncio.Task] = set()
        self._update_timer = QTimer(self, singleShot=True, interval=0)
        self._update_timer.timeout.connect(self.refresh)
        self.vb.sigRangeChanged.connect(self._schedule_refresh)
        self.vb.sigResized.connect(self._schedule_refresh)
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    # ------------------------------------------------------------------ slide
    def set_slide(self, slide: Slide | None, plane: int = 0) -> None:
        """Show ``slide`` (None: nothing) in ``plane``, fitted to the view."""
        self.generation = self.store.next_generation()
        self.store.cancel_superseded(self.generation)
        self._inflight.clear()
        self._failed.clear()
        self.slide, self.plane = slide, plane
        self.layer.reset(slide, tile_size_for(slide) if slide else 512)
        self.overlay.reset(None, self.layer.tile_size)
        if slide is None:
            self.scale_bar.set_scale(0, None)
            return
        W, H = slide.dimensions
        span = max(W, H)
        self.vb.setLimits(xMin=-span, xMax=W + span, yMin=-span, yMax=H + span,
                          minXRange=8, minYRange=8, maxXRange=4 * span, maxYRange=4 * span)
        self.fit()

    def set_plane(self, plane: int) -> None:
        """Show focal plane ``plane`` (an index into ``slide.planes_um``) of the slide itself."""
        if self.slide is None:
            return
        if not 0 <= plane < self.slide.plane_count:
            raise ValueError(f"plane {plane} out of range 0..{self.slide.plane_count - 1}")
        self.set_source(self.slide, plane)

    @property
    def source(self) -> Slide | None:
        """What the slide layer draws: the slide itself, or a computed view of it with the same
        pyramid (the slide refocused to a z between or beyond its planes)."""
        return self.layer.slide

    def set_source(self, source: Slide, plane: int = 0) -> None:
        """Draw ``plane`` of ``source`` (the slide or a computed view of it with the same levels).
        The pixels on screen stay until the new source's tiles arrive, as when stepping planes."""
        if self.slide is None:
            raise ValueError("no slide to show a view of")
        old = self.layer.slide
        if source is old and plane == self.plane:
            return
        if source is not old:
            if not same_geometry(source, self.slide):
                raise ValueError(f"{source.uid!r} does not have the slide's pyramid levels")
            for req in [r for r in self._inflight if r.slide_uid == old.uid]:
                del self._inflight[req]  # no longer counts for this view (the store cancels it)
            self.layer.switch(source, self.layer.tile_size, keep_pixels=True)
        self.plane = plane
        self.refresh()

    # ------------------------------------------------------------------ overlay
    @property
    def overlay_source(self) -> Slide | None:
        """The computed source drawn over the slide, or None."""
        return self.overlay.slide

    def set_overlay(self, source: Slide | None, keep_pixels: bool = False) -> None:
        """Draw ``source`` (same levels as the slide; pure white = transparent) over the slide,
        or no overlay (None). Its tiles are fetched for the current view at once. With
        ``keep_pixels`` (e.g. the same overlay of another focal plane) the pixels on screen stay
        until the new ones arrive."""
        old = self.overlay.slide
        if source is old:
            return
        if source is not None:
            if self.slide is None:
                raise ValueError("an overlay needs a slide to lie on")
            if not same_geometry(source, self.slide):
                raise ValueError(f"overlay {source.uid!r} does not have the slide's pyramid levels")
        if old is not None:  # its tiles still in flight no longer count for this view
            for req in [r for r in self._inflight if r.slide_uid == old.uid]:
                del self._inflight[req]
        self.overlay.switch(source, self.layer.tile_size, keep_pixels)
        self.refresh()

    def set_overlay_opacity(self, opacity: float) -> None:
        """Opacity of the overlay, 0 (invisible) .. 1 (opaque)."""
        self.overlay.set_opacity(opacity)

    def overlay_settled(self) -> bool:
        """True when an overlay is shown and its visible tiles all show their exact pixels."""
        src = self.overlay.slide
        return src is not None and not self._update_timer.isActive() and self.overlay.is_complete() \
            and not any(r.slide_uid == src.uid and r.level == self.overlay.level for r in self._inflight)

    def visible_overlay_tiles(self) -> dict[tuple[int, int, int], tuple[TileRequest, np.ndarray, bool]]:
        """Like ``visible_tiles``, for the overlay (RGBA pixels, alpha 0 where transparent)."""
        shown = self.overlay.shown_tiles()
        return {k: shown[k] for k in self.overlay.view_keys() if k in shown}

    # ------------------------------------------------------------------ view
    def fit(self) -> None:
        """Show the whole slide."""
        if self.slide is not None:
            W, H = self.slide.dimensions
            self.vb.setRange(QRectF(0, 0, W, H), padding=0.02)

    def set_view_rect(self, x: float, y: float, w: float, h: float) -> None:
        """Show at least the rectangle ``(x, y, w, h)`` in level-0 px (aspect kept)."""
        self.vb.setRange(QRectF(x, y, w, h), padding=0)

    def view_rect(self) -> tuple[float, float, float, float]:
        """The visible rectangle ``(x, y, w, h)`` in level-0 px."""
        (x0, x1), (y0, y1) = self.vb.viewRange()
        return x0, y0, x1 - x0, y1 - y0

    def view_tiles_rect(self) -> tuple[float, float, float, float]:
        """The level-0 rectangle ``(x, y, w, h)`` covered by the tiles of the current view (the
        visible rectangle rounded out to whole tiles of the current level: what is computed)."""
        keys = self.layer.view_keys()
        if not keys or self.slide is None:
            return self.view_rect()
        level = keys[0][0]
        rects = [tile_rect_level0(self.slide, level, c, r, self.layer.tile_size) for _, c, r in keys]
        x0, y0 = min(r[0] for r in rects), min(r[1] for r in rects)
        x1, y1 = max(r[0] + r[2] for r in rects), max(r[1] + r[3] for r in rects)
        return x0, y0, x1 - x0, y1 - y0

    def screen_px_per_level0_px(self) -> float:
        """Current zoom: screen px per level-0 px."""
        px = self.vb.viewPixelSize()[0]
        return 1.0 / px if px > 0 else 0.0

    def zoom(self, factor: float, center: tuple[float, float] | None = None) -> None:
        """Zoom in by ``factor`` (> 1 in, < 1 out) about ``center`` (level-0 px; default the
        view centre), within the canvas limits."""
        if factor <= 0:
            raise ValueError("zoom factor must be positive")
        limit = MAX_SCREEN_PX_PER_PX / max(self.screen_px_per_level0_px(), 1e-12)
        if factor > 1:  # zooming in stops at the limit; past it (the wheel allows more) it stays put
            factor = max(1.0, min(factor, limit))
        if center is None:
            x, y, w, h = self.view_rect()
            center = (x + w / 2, y + h / 2)
        self.vb.scaleBy(s=(1 / factor, 1 / factor), center=QPointF(*center))

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by ``(dx, dy)`` level-0 px."""
        self.vb.translateBy(x=dx, y=dy)

    @property
    def level(self) -> int:
        return self.layer.level

    def is_settled(self) -> bool:
        """True when the visible tiles all show their exact pixels and nothing is in flight
        for them."""
        return self.slide is not None and not self._update_timer.isActive() \
            and self.layer.is_complete() and (self.overlay.slide is None or self.overlay.is_complete()) \
            and not self._inflight_for_view()

    def _layers(self) -> list[TileLayer]:
        return [layer for layer in (self.layer, self.overlay) if layer.slide is not None]

    def _layer_for(self, slide_uid: str) -> TileLayer | None:
        return next((layer for layer in self._layers() if layer.slide.uid == slide_uid), None)

    def slide_settled(self) -> bool:
        """True when the slide layer's visible tiles show their exact pixels and none of them
        is in flight (the overlay aside)."""
        uid = None if self.layer.slide is None else self.layer.slide.uid
        return self.slide is not None and not self._update_timer.isActive() and self.layer.is_complete() \
            and not any(r.level == self.layer.level and r.slide_uid == uid for r in self._inflight)

    def _inflight_for_view(self) -> bool:
        uids = {layer.slide.uid for layer in self._layers()}
        return any(r.level == self.layer.level and r.slide_uid in uids for r in self._inflight)

    # ------------------------------------------------------------------ the walk of a view change
    def _schedule_refresh(self, *_):
        if not self._update_timer.isActive():
            self._update_timer.start()

    def refresh(self) -> None:
        """Bring the tiles in line with the view: new generation, cached pixels now, the rest
        fetched; superseded queued tiles cancelled."""
        self._update_timer.stop()
        slide = self.slide
        if slide is None:
            return
        scale = self.screen_px_per_level0_px()
        self.scale_bar.set_scale(scale, slide.mpp[0] if slide.mpp else None)
        if scale <= 0:
            return
        level = level_for_scale(slide, 1.0 / scale)
        cells = visible_tiles(slide, level, self.layer.tile_size, self.view_rect())
        wanted = [(self.layer, self.layer.show(level, self.plane, cells))]
        if self.overlay.slide is not None:  # the overlay's single plane follows the slide's
            wanted.append((self.overlay, self.overlay.show(level, 0, cells)))
        self.generation = g = self.store.next_generation()
        self._fetch_stand_ins(wanted[0][1], g)
        for layer, missing in wanted:
            for req in missing:
                if req in self._failed:
                    layer.mark_failed(req)
                    continue
                if req in self._inflight and self.store.claim(req, g):
                    continue
                fut = self.store.fetch(req, g)
                self._inflight[req] = fut
                self._await_tile(req, fut)
        self.store.cancel_superseded(g)
        self.plane_store.cancel_superseded(g)
        self.loading.emit(len(self._inflight))
        self.viewChanged.emit()
        if self.is_settled():
            self.settled.emit()

    def stop(self) -> None:
        """Give up every tile still awaited (the window is closing): queued reads are cancelled
        and no result will be applied."""
        self.store.cancel_superseded(self.store.next_generation())
        self.plane_store.close()
        for task in list(self._tasks):
            task.cancel()

    def _fetch_stand_ins(self, missing: list[TileRequest], generation: int) -> None:
        """Fetch, ahead of the slow tiles ``missing``, the captured-plane tiles their stand-ins
        are made of (see the module docstring); each shows as soon as it arrives."""
        sources = getattr(self.layer.slide, "stand_in_sources", None)
        if sources is None:
            return
        for req in missing:
            for slide, plane in sources(req):
                base = self.plane_store.request(slide, req.level, req.col, req.row, plane, req.tile_size)
                if self.store.cache.peek(base) is not None:
                    continue
                task = asyncio.get_running_loop().create_task(
                    self._receive_stand_in(req, self.plane_store.fetch(base, generation)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _receive_stand_in(self, req: TileRequest, fut: Future) -> None:
        try:
            await asyncio.wrap_future(fut)
        except (asyncio.CancelledError, Exception):  # superseded, or unreadable (the exact tile reports it)
            return
        if shiboken6.isValid(self):
            self.layer.update_stand_in(req)

    def _await_tile(self, req: TileRequest, fut: Future) -> None:
        task = asyncio.get_running_loop().create_task(self._receive(req, fut))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _receive(self, req: TileRequest, fut: Future) -> None:
        try:
            pixels = await asyncio.wrap_future(fut)
        except asyncio.CancelledError:  # superseded by a newer view
            return
        except Exception as exc:  # a broken tile: report, draw a placeholder, keep going
            layer = self._layer_for(req.slide_uid)
            if layer is not None:
                self._failed.add(req)
                layer.mark_failed(req)
                self.tileFailed.emit(str(exc) if layer is self.layer else f"overlay: {exc}")
                if self.is_settled():
                    self.settled.emit()
            return
        finally:
            # The window may be gone (its loop closing the task): then nothing is left to tell.
            if self._inflight.get(req) is fut and shiboken6.isValid(self):
                del self._inflight[req]
                self.loading.emit(len(self._inflight))
        layer = self._layer_for(req.slide_uid)
        if layer is not None and layer.apply(req, pixels) and self.is_settled():
            self.settled.emit()

    # ------------------------------------------------------------------ events
    def _mouse_moved(self, pos):
        if self.slide is not None and self.vb.sceneBoundingRect().contains(pos):
            p = self.vb.mapSceneToView(pos)
            self.cursorMoved.emit(p.x(), p.y())

    def resizeEvent(self, ev):  # noqa: N802 (Qt name)
        super().resizeEvent(ev)
        if hasattr(self, "scale_bar"):
            self.scale_bar.move(12, self.height() - self.scale_bar.height() - 12)
        if hasattr(self, "busy") and self.busy.isVisible():
            self.busy._place()

    def visible_tiles(self) -> dict[tuple[int, int, int], tuple[TileRequest, np.ndarray, bool]]:
        """``displayed_tiles`` restricted to the tiles of the current view."""
        shown = self.layer.shown_tiles()
        return {k: shown[k] for k in self.layer.view_keys() if k in shown}

    def displayed_tiles(self) -> dict[tuple[int, int, int], tuple[TileRequest, np.ndarray, bool]]:
        """What is on screen, per tile item: see ``TileLayer.shown_tiles``."""
        return self.layer.shown_tiles()
