"""Saving and loading refocus weights: ``{"config": ..., "state": state_dict, "meta": ...}``.

Files are read with ``torch.load(..., weights_only=True)``. ``SHIPPED`` is the model that ships
in resources/weights/ (``None`` when it is not there).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .model import RefocusNet

__all__ = ["SHIPPED", "save_weights", "load_model", "shipped_weights"]

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "weights" / "refocus.pt"


def save_weights(model: RefocusNet, path: Path, meta: dict | None = None) -> None:
    """Write the model's config and float32 state (atomically: tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": dict(model.config), "state": model.state_dict(), "meta": dict(meta or {})}, tmp)
    tmp.replace(path)


def load_model(path: Path) -> tuple[RefocusNet, dict]:
    """(model in eval mode, meta) from a weights file."""
    path = Path(path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "config" not in blob or "state" not in blob:
        raise ValueError(f"{path}: not a refocus weights file")
    cfg = blob["config"]
    model = RefocusNet(depth=cfg["depth"], channels=tuple(cfg["channels"]), bin_step_um=cfg["bin_step_um"],
                       pool=cfg["pool"], image_attention=cfg.get("image_attention", False))
    model.load_state_dict(blob["state"])
    return model.eval(), dict(blob.get("meta", {}))


def shipped_weights() -> Path | None:
    return SHIPPED if SHIPPED.exists() else None
