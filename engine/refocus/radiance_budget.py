"""How much radiance the viewer may keep, and whether a view's radiance fits: the guard that keeps
a focus turn from re-encoding the view it is on.

A turn of the focus knob off the captured planes decodes the radiance field of every level-0 block
the view shows (`RefocusedSlide`). If those fields do not all fit in the `RadianceCache`, a plain
LRU evicts the very blocks the next turn needs and every turn re-encodes (seconds per block). So
the viewer plans each view (`plan_view`): the view's blocks become the cache's protected working
set, which is kept whole however large, as long as it fits under a *cap* sized from the memory the
machine has (``cap_bytes``); the cache's own ``max_bytes`` (1 GiB by default) then bounds only the
blocks off the view. A view whose fields exceed the cap, or that covers more blocks than can be
encoded in reasonable time (``MAX_VIEW_BLOCKS``), is not refocused: the viewer shows the linear
blend of the planes around z and says so (zoom in to refocus), instead of thrashing.

Sizes: a block is 128 µm square (512 model px at 0.25 µm/px) plus its margin; its field takes
``RefocusedSlide.block_radiance_bytes()`` (about 57 MB in float16 with the shipped model).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ViewPlan", "plan_view", "radiance_cap_bytes", "available_memory_bytes",
           "MAX_VIEW_BLOCKS", "MAX_SHARE_OF_AVAILABLE", "CAP_ENV"]

#: At most this many blocks are refocused for one view: the tiles of a 1920×1080 screen at 1:1
#: over a 20× scan (256-px blocks under 512-px tiles) touch up to about 80; encoding one takes
#: 1–2 s on two cores.
MAX_VIEW_BLOCKS = 96
#: The working set may take at most this share of the memory available when the cap is sized.
MAX_SHARE_OF_AVAILABLE = 0.5
#: Environment variable: the radiance cap in GiB (overrides the share of available memory).
CAP_ENV = "FINEFOCUS_RADIANCE_GB"
#: The cap when the available memory cannot be read (bytes).
FALLBACK_CAP_BYTES = 4 << 30


def available_memory_bytes() -> int | None:
    """Memory the system can give without swapping (``MemAvailable`` of /proc/meminfo), in bytes;
    None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def radiance_cap_bytes(environ=os.environ) -> int:
    """The most the viewer's radiance working set may hold (bytes): ``FINEFOCUS_RADIANCE_GB`` GiB
    if set, else ``MAX_SHARE_OF_AVAILABLE`` of the available memory now. Raises ValueError for a
    setting that is not a positive number."""
    text = environ.get(CAP_ENV, "").strip()
    if text:
        try:
            gb = float(text)
        except ValueError:
            raise ValueError(f"{CAP_ENV}={text!r} is not a number of GiB") from None
        if not gb > 0:
            raise ValueError(f"{CAP_ENV}={text!r} must be a positive number of GiB")
        return int(gb * (1 << 30))
    avail = available_memory_bytes()
    return int(MAX_SHARE_OF_AVAILABLE * avail) if avail else FALLBACK_CAP_BYTES


@dataclass(frozen=True)
class ViewPlan:
    """What refocusing one view at level 0 takes: its ``blocks`` (nearest the centre first),
    ``need_bytes`` of radiance for them, the ``cap_bytes`` allowed, and whether it ``fits``
    (else ``reason`` says why, in words for the status bar)."""

    blocks: tuple[tuple[int, int], ...]
    block_bytes: int
    cap_bytes: int
    fits: bool
    reason: str = ""

    @property
    def need_bytes(self) -> int:
        return self.block_bytes * len(self.blocks)


def plan_view(slide, rect: tuple[float, float, float, float], cap_bytes: int,
              max_blocks: int = MAX_VIEW_BLOCKS) -> ViewPlan:
    """The plan for showing the level-0 rectangle ``rect`` (x, y, w, h in level-0 px) of the
    `RefocusedSlide` ``slide`` refocused."""
    blocks = tuple(slide.blocks_in(*rect))
    if not blocks:
        return ViewPlan((), 0, cap_bytes, True)
    per = slide.block_radiance_bytes()
    need = per * len(blocks)
    if len(blocks) > max_blocks:
        return ViewPlan(blocks, per, cap_bytes, False,
                        f"the view covers {len(blocks)} blocks of 128 µm (at most {max_blocks} are refocused)")
    if need > cap_bytes:
        return ViewPlan(blocks, per, cap_bytes, False,
                        f"the view needs {need / 2 ** 30:.1f} GiB of radiance (limit {cap_bytes / 2 ** 30:.1f} GiB, "
                        f"{CAP_ENV})")
    return ViewPlan(blocks, per, cap_bytes, True)
