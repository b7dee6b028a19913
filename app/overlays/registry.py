"""The overlays the viewer offers: a small registry of computed slide sources.

An `OverlayKind` names one kind of overlay and knows how to build its source for a slide: any
`Slide` with the base slide's geometry (same levels, level-0 px) whose pixels are a colour map
and whose glass / no-value pixels are pure white (255, 255, 255), which the viewer draws
transparent. Such a source goes through the tile store like any slide, so the viewer overlays
it tile by tile. If the source also has ``value_range`` (vmin, vmax), ``label`` and ``cmap``
(a name in `engine.colormaps.LUTS`) the dock draws its legend; with ``scores_for_region`` the
status bar reads the value under the cursor.

Built in: FocusLiteNN heatmaps (one kind per shipped weights file), every classical metric of
`engine.fqa.metrics`, the best-focus depth map (slides with ≥ 2 planes) and, when
`engine.fusion.heatmap_source` provides them, the fused-IQA heatmap and its uncertainty.
`register_overlay` adds more (a new computed source needs no other change in the app).

Factories run on a worker thread (they may load weights or fit a model); the engine modules
are imported inside them, so building the menu never imports torch.
"""
from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.slides.base import Slide

#: ``make(base, plane, value_range)`` → the source; ``value_range`` (vmin, vmax) in the source's
#: units fixes the colour scale (None: the source picks it), so all planes share one scale.
SourceFactory = Callable[[Slide, int, "tuple[float, float] | None"], Slide]

#: Where the shipped FocusLiteNN weights live (engine.fqa.focuslitenn.RESOURCE_DIR; read here
#: by path so that listing them does not import torch).
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "resources" / "weights"
_WEIGHTS_NAME = re.compile(r"^focuslitenn-(\d+)k\.pt$")


def _format_score(value: float) -> str:
    return "glass" if not math.isfinite(value) else f"{value:.4g}"


@dataclass(frozen=True)
class OverlayKind:
    """One entry of View ▸ Overlay.

    ``key`` identifies it (settings, CLI, tests); ``title`` is the menu text; ``group`` puts it
    in a submenu of that name; ``follows_plane``: one source per focal plane of the slide (a
    heatmap of the plane shown) rather than one for the whole stack (a depth map);
    ``min_planes``: the fewest focal planes a slide needs; ``readout(value)`` formats the value
    under the cursor for the status bar; ``reports_progress``: ``make`` also takes keywords
    ``progress(fraction 0..1)`` and ``cancelled() -> bool`` (for factories that take long, such
    as fitting the fusion)."""

    key: str
    title: str
    make: SourceFactory = field(compare=False, repr=False)
    group: str = ""
    follows_plane: bool = True
    min_planes: int = 1
    readout: Callable[[float], str] = field(default=_format_score, compare=False, repr=False)
    reports_progress: bool = False

    def available(self, slide: Slide | None) -> bool:
        """Whether this overlay can be shown over ``slide``."""
        return slide is not None and slide.plane_count >= self.min_planes


_REGISTERED: dict[str, OverlayKind] = {}


def register_overlay(kind: OverlayKind) -> None:
    """Offer ``kind`` in the menu (after the built-in kinds); a kind with the same key replaces it."""
    _REGISTERED[kind.key] = kind


def unregister_overlay(key: str) -> None:
    _REGISTERED.pop(key, None)


# ---------------------------------------------------------------- built-in kinds
def shipped_focuslitenn_kernels() -> list[int]:
    """Kernel counts N of the shipped ``focuslitenn-Nk.pt`` weights, ascending."""
    if not WEIGHTS_DIR.is_dir():
        return []
    found = (_WEIGHTS_NAME.match(p.name) for p in WEIGHTS_DIR.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def _heatmap_factory(model: str) -> SourceFactory:
    def make(base: Slide, plane: int, value_range):
        from engine.fqa.heatmap_source import HeatmapSlide

        return HeatmapSlide(base, model=model, plane=plane, value_range=value_range)

    return make


def _depth_map(base: Slide, plane: int, value_range) -> Slide:
    from engine.fqa.depth_map import DepthMapSlide

    return DepthMapSlide(base, model=DEPTH_MAP_MODEL)


#: The model that finds the best focus per location for the depth map.
DEPTH_MAP_MODEL = "focuslitenn-1"


def focuslitenn_kinds() -> list[OverlayKind]:
    return [OverlayKind(f"focuslitenn-{n}", f"Focus quality — FocusLiteNN-{n}", _heatmap_factory(f"focuslitenn-{n}"),
                        readout=lambda v, n=n: f"FocusLiteNN-{n} {_format_score(v)}")
            for n in shipped_focuslitenn_kernels()]


def metric_kinds() -> list[OverlayKind]:
    """One kind per classical metric (thesis Ch. 2), oriented so that higher = blurrier."""
    from engine.fqa.metrics import METRICS

    kinds = []
    for name, m in METRICS.items():
        pretty = name.replace("_", " ").capitalize()
        kinds.append(OverlayKind(f"metric:{name}", f"{pretty} ({m.equation})", _heatmap_factory(name),
                                 group="Focus quality — classical metric",
                                 readout=lambda v, p=pretty: f"{p} {_format_score(v)}"))
    return kinds


def depth_map_kind() -> OverlayKind:
    return OverlayKind("depth", "Best-focus depth map", _depth_map, follows_plane=False, min_planes=2,
                       readout=lambda v: "best focus: glass" if not math.isfinite(v)
                       else f"best focus z = {v:+.2f} µm")


def fusion_kinds() -> list[OverlayKind]:
    """The fused-IQA overlays, when engine.fusion provides them as slide sources."""
    from . import fusion_sources

    return fusion_sources.kinds()


def fusion_available() -> bool:
    """Whether engine/fusion has the modules the fused overlays use (looked up without importing
    the fusion package, which imports torch)."""
    spec = importlib.util.find_spec("engine.fusion")
    return spec is not None and any((Path(p) / "heatmap_source.py").is_file() and (Path(p) / "slide_fit.py").is_file()
                                    for p in spec.submodule_search_locations or ())


def overlay_kinds() -> list[OverlayKind]:
    """Every overlay on offer, in menu order."""
    kinds = [*focuslitenn_kinds(), *metric_kinds(), depth_map_kind()]
    if fusion_available():
        kinds += fusion_kinds()
    seen = {k.key for k in kinds}
    kinds += [k for key, k in _REGISTERED.items() if key not in seen]
    kinds = [_REGISTERED.get(k.key, k) for k in kinds]
    return kinds


def overlay_kind(key: str) -> OverlayKind:
    """The kind with ``key``; KeyError naming the keys on offer if there is none."""
    for kind in overlay_kinds():
        if kind.key == key:
            return kind
    raise KeyError(f"no overlay {key!r}; on offer: {', '.join(k.key for k in overlay_kinds())}")
