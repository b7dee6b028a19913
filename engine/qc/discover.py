"""Which slides a QC batch covers: the files and folders named on the command line.

* A file named directly is a slide, whatever its name (a bad one gets an error row later).
* A folder that is itself a slide (OME-Zarr metadata, DICOM instances, a plane set) is one slide.
* Any other folder is walked recursively, in sorted order: files whose names end in a slide
  suffix (`SLIDE_SUFFIXES`: whole-slide formats, TIFF, DICOM, CZI; not plain PNG / JPEG, which
  folders hold for many other reasons) and sub-folders that are slides. Hidden entries and the
  ``skip`` folders (the QC's own output folder) are left out.

Paths come back absolute, without duplicates, in the order given (then walk order), so a batch
and its resumption list the same slides in the same order and workers elsewhere find them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from ..slides.ome_zarr import looks_like_zarr
from ..slides.plane_set import plane_files_in

#: Suffixes of files a folder walk takes as slides (lower case; ``.ome.tif`` ends in ``.tif``).
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide",
                  ".bif", ".czi", ".dcm", ".btf")


class NoSuchInput(ValueError):
    """An input path that does not exist (a user mistake, named in the message)."""


def is_slide_folder(folder: Path) -> bool:
    """True when ``folder`` opens as one slide (OME-Zarr, DICOM instances or a plane set)."""
    try:
        if looks_like_zarr(folder) or plane_files_in(folder):
            return True
        return any(_is_dicom(c) for c in sorted(folder.iterdir()) if c.is_file())
    except (OSError, ValueError):  # unreadable, or a broken plane-set sidecar: let open_slide say why
        return (folder / "planes.json").is_file()


def discover_slides(inputs: Sequence[str | os.PathLike], skip: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Absolute slide paths for ``inputs`` (module docstring). Raises `NoSuchInput` for an input
    that does not exist."""
    skip_set = {Path(s).resolve() for s in skip}
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        if p not in seen:
            seen.add(p)
            out.append(p)

    for raw in inputs:
        p = Path(raw).absolute()
        if not p.exists() and not p.is_symlink():
            raise NoSuchInput(f"{raw}: no such file or folder")
        if p.is_dir() and not is_slide_folder(p):
            for found in _walk(p, skip_set):
                add(found)
        else:
            add(p)
    return out


def _walk(folder: Path, skip: set[Path]) -> Iterable[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for e in entries:
        if e.name.startswith(".") or e.resolve() in skip:
            continue
        if e.is_dir():
            if is_slide_folder(e):
                yield e
            else:
                yield from _walk(e, skip)
        elif e.is_file() and e.name.lower().endswith(SLIDE_SUFFIXES):
            yield e


def _is_dicom(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False
