"""`RefocusView`: what the slide layer shows at a z off the captured planes, and how far it is.

The window hands it every focus change off the planes (``show(z_um)``) and every view change
(``view_changed()``). For each it plans the view (`engine.refocus.radiance_budget.plan_view`):

* the level-0 blocks under the view's tiles (the visible rectangle rounded out to whole tiles:
  what the tile reads compute) become the radiance cache's protected working set, so a further turn
  of the knob on the same view decodes cached fields and never re-encodes them;
* a view whose fields would not fit the cap (or that covers too many blocks) shows the linear
  blend of the planes around z at level 0 instead, and says so ("blend: zoom in to refocus");
* coarse levels show the blend (the refocused source does that itself) and say so.

While the view's refocused pixels are computed the focus label and a badge over the view say
"refocusing… n / m blocks" (n = blocks whose field is encoded); "refocused" only once every
visible tile shows its refocused pixels. Nothing here computes: it runs on the UI thread and only
looks at caches.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from engine.slides.base import Slide

#: How often the progress is re-read while blocks are computed (ms).
PROGRESS_MS = 250

REFOCUSED = "refocused"
COARSE = "blend of the planes (zoomed out)"
DEGRADED = "blend: zoom in to refocus"


class RefocusView(QObject):
    """Off-plane focus for one window: ``canvas`` (SlideCanvas), ``focus`` (FocusControl),
    ``message(text)`` for the status bar. ``cache_bytes`` bounds the radiance off the view;
    ``cap_bytes`` the view's own working set (default: from available memory)."""

    def __init__(self, canvas, focus, message, parent=None, cache_bytes: int | None = None,
                 cap_bytes: int | None = None):
        super().__init__(parent)
        self.canvas, self.focus, self.message = canvas, focus, message
        self._cache_bytes, self._cap_bytes = cache_bytes, cap_bytes
        #: Optional ``(slide, z_um, blend_only) -> source or None`` (app/paint): a focus map's
        #: source (a `FocusMappedSlide`) to show instead of the slide refocused to z.
        self.mapped_source = None
        self._cache = None
        self._warm = None  # the executor of `_warm_plan`
        self.slide: Slide | None = None
        #: The refocused source shown now (None on a captured plane) and its view plan.
        self.source = None
        self.plan = None
        self._timer = QTimer(self, interval=PROGRESS_MS)
        self._timer.timeout.connect(self.update_progress)
        canvas.loading.connect(lambda *_: self.update_progress())
        canvas.settled.connect(self.update_progress)

    # ------------------------------------------------------------------ cache
    def radiance_cache(self):
        """The window's radiance cache (made on first use): the knob and the exports share it."""
        from engine.refocus.refocused_slide import DEFAULT_RADIANCE_BYTES, RadianceCache

        if self._cache is None:
            self._cache = RadianceCache(self._cache_bytes or DEFAULT_RADIANCE_BYTES)
        return self._cache

    def cap_bytes(self) -> int:
        """The most the view's radiance may take (bytes)."""
        if self._cap_bytes is None:
            from engine.refocus.radiance_budget import radiance_cap_bytes

            try:
                self._cap_bytes = radiance_cap_bytes()
            except ValueError as exc:  # a bad setting: say so once, use the default share
                self.message(str(exc))
                self._cap_bytes = radiance_cap_bytes({})
        return self._cap_bytes

    # ------------------------------------------------------------------ the window's calls
    def set_slide(self, slide: Slide) -> None:
        """A new slide: forget the old one's fields."""
        self.slide, self.source, self.plan = slide, None, None
        if self._cache is not None:
            self._cache.protect(())
            self._cache.clear()
        self._finish()
        self._warm_plan(slide)

    def _warm_plan(self, slide: Slide) -> None:
        """Measure what a radiance field of this slide's planes takes (a small encode, cached per
        model and plane count: `RefocusedSlide.block_radiance_bytes`) on a worker thread, so the
        first turn of the knob off a plane, which plans the view with it, does not run the model
        on the UI thread (seconds on a loaded machine). The worker is an executor's (joined at
        exit, never a daemon thread killed inside torch)."""
        from concurrent.futures import ThreadPoolExecutor

        from engine.resources import REFOCUS_WEIGHTS

        if not REFOCUS_WEIGHTS.exists():
            return
        cache = self.radiance_cache()
        if self._warm is None:
            self._warm = ThreadPoolExecutor(1, thread_name_prefix="finefocus-plan-warm")

        def work():
            try:
                from engine.refocus.refocused_slide import RefocusedSlide

                RefocusedSlide(slide, max(slide.planes_um) + 0.5, cache=cache).block_radiance_bytes()
            except Exception:  # noqa: BLE001 (a warm-up: the knob measures it itself if this failed)
                pass

        self._warm.submit(work)

    def on_plane(self) -> None:
        """The knob is on a captured plane: nothing to refocus (the fields stay cached)."""
        self.source, self.plan = None, None
        if self._cache is not None:
            self._cache.protect(())
        self._finish()

    def show(self, z_um: float) -> None:
        """Show the slide at ``z_um`` (off the captured planes)."""
        self._apply(z_um)

    def view_changed(self) -> None:
        """The view moved or zoomed: re-plan the refocused view (never re-encoding what is on screen)."""
        if self.source is not None and self.canvas.source is self.source:
            self._apply(self.source.z_um)

    # ------------------------------------------------------------------ planning
    def _apply(self, z_um: float) -> None:
        from engine.refocus.radiance_budget import plan_view

        full = self._source(z_um, blend_only=False)
        if self.canvas.level == 0 and full.decodes:
            plan = plan_view(full, self.canvas.view_tiles_rect(), self.cap_bytes())
        else:
            plan = None
        cache = self.radiance_cache()
        if plan is not None and not plan.fits:
            cache.protect(())
            chosen = self._source(z_um, blend_only=True)
            if self.plan is None or self.plan.fits or self.plan.reason != plan.reason:
                self.message(f"Showing the blend of the planes around z: {plan.reason}. Zoom in to refocus.")
        else:
            if plan is not None:
                cache.protect(full.radiance_key(bx, by) for bx, by in plan.blocks)
            chosen = full
        self.plan = plan
        self.source = chosen
        if self.canvas.source is not chosen:
            self.canvas.set_source(chosen)
        self.update_progress()

    def _source(self, z_um: float, blend_only: bool):
        """The refocused source at ``z_um`` (the one shown if it is the same z and mode; a
        `ViewRefocusedSlide`: cheap stand-ins and uid on this thread); the focus map's when one is
        painted and shown."""
        from .view_source import ViewRefocusedSlide

        mapped = self.mapped_source(self.slide, z_um, blend_only) if self.mapped_source else None
        if mapped is not None:
            return mapped
        for cand in (self.source, self.canvas.source):
            if type(cand) is ViewRefocusedSlide and cand.base is self.slide and cand.z_um == float(z_um) \
                    and cand.blend_only == blend_only:
                return cand
        return ViewRefocusedSlide(self.slide, z_um, cache=self.radiance_cache(), blend_only=blend_only)

    # ------------------------------------------------------------------ progress
    def state(self) -> tuple[str, int, int]:
        """(label, blocks encoded, blocks the view needs) of the view now."""
        src = self.source
        if src is None:
            return "", 0, 0
        if self.plan is None:
            return (COARSE if self.canvas.level > 0 else REFOCUSED), 0, 0
        if not self.plan.fits:
            return DEGRADED, 0, 0
        total = len(self.plan.blocks)
        done = sum(src.has_radiance(bx, by) for bx, by in self.plan.blocks)
        if self.canvas.slide_settled():
            return REFOCUSED, done, total
        return f"refocusing… {done} / {total} blocks", done, total

    def update_progress(self) -> None:
        """Re-read the state and show it on the focus label and the badge."""
        if self.source is None:
            return
        text, done, total = self.state()
        self.focus.set_state(text)
        busy = text.startswith("refocusing")
        if busy:
            self.canvas.busy.show_progress(text.capitalize(), done, total)
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._finish()

    def _finish(self) -> None:
        self._timer.stop()
        self.canvas.busy.clear()
