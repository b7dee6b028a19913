"""Saving and loading refocus weights: ``{"config": ..., "state": state_dict, "meta": ...}``.

Files are read with ``torch.load(..., weights_only=True)``. ``SHIPPED`` is the model that ships
in resources/weights/ (``None`` when it is not there).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .model import RefocusNet
from ..resources import REFOCUS_WEIGHTS

__all__ = ["SHIPPED", "save_weights", "load_model", "shipped_weights", "save_atomic", "load_blob"]

SHIPPED = REFOCUS_WEIGHTS


def save_atomic(blob: dict, path: Path) -> None:
    """``torch.save`` a dict of tensors and plain data to ``path`` via a tmp file and a rename,
    so a reader (or a run killed mid-write) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_blob(path: Path, keys: tuple[str, ...], kind: str) -> dict:
    """A weights dict read with ``weights_only=True``; ValueError naming the file unless it
    holds ``keys``."""
    path = Path(path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or any(k not in blob for k in keys):
        raise ValueError(f"{path}: not a {kind} weights file")
    return blob


def save_weights(model: RefocusNet, path: Path, meta: dict | None = None) -> None:
    """Write the model's config and float32 state (atomically: tmp file + rename)."""
    save_atomic({"config": dict(model.config), "state": model.state_dict(), "meta": dict(meta or {})}, path)


def load_model(path: Path) -> tuple[RefocusNet, dict]:
    """(model in eval mode, meta) from a weights file."""
    blob = load_blob(path, ("config", "state"), "refocus")
    cfg = blob["config"]
    model = RefocusNet.from_config(cfg)
    model.load_state_dict(blob["state"])
    return model.eval(), dict(blob.get("meta", {}))


def shipped_weights() -> Path | None:
    return SHIPPED if SHIPPED.exists() else None
