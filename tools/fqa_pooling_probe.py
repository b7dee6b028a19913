"""How much the pooling alone costs on the evaluation patches: one band-pass filter (difference of
Gaussians, σ = 0.7 and 1.4 px) pooled over each 235-px patch by its mean, by percentiles and by its
maximum (what FocusLiteNN's max pooling reads), each scored by SRCC against |z − z*|.

    .venv/bin/python tools/fqa_pooling_probe.py [--seed 3] [--stacks 96]

Prints JSON {"seed", "patches", "srcc": {"mean": ..., "p90": ..., "p99": ..., "max": ...}}. Uses the
same cached stacks as `finefocus fqa eval` (rendered on first use).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.evaluation import srcc  # noqa: E402
from engine.fqa.evaluate import evaluation_stacks  # noqa: E402
from engine.fqa.metrics import to_gray  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--stacks", type=int, default=96)
    a = ap.parse_args(argv)
    st = evaluation_stacks(a.seed, a.stacks)
    imgs = st.images.reshape((-1,) + st.images.shape[2:])
    labels = st.labels.reshape(-1)
    g = to_gray(imgs).astype(np.float32)
    band = np.abs(ndimage.gaussian_filter(g, (0, 0.7, 0.7)) - ndimage.gaussian_filter(g, (0, 1.4, 1.4)))
    flat = band.reshape(len(band), -1)
    pooled = {"mean": flat.mean(1), "p90": np.percentile(flat, 90, axis=1),
              "p99": np.percentile(flat, 99, axis=1), "max": flat.max(1)}
    # more band-pass energy = sharper: the blur score is its negative
    print(json.dumps({"seed": a.seed, "patches": int(len(labels)),
                      "srcc": {k: round(float(srcc(-v, labels)), 4) for k, v in pooled.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
