"""Where shipped resources live (no heavy imports: the viewer asks before loading any model)."""
from __future__ import annotations

from pathlib import Path

#: resources/weights/ of the repository: FocusLiteNN, refocusing and WSI-DISTS weights.
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "resources" / "weights"
#: The shipped refocusing model.
REFOCUS_WEIGHTS = WEIGHTS_DIR / "refocus.pt"
