"""Fit the QC's FocusLiteNN score → defocus (µm) map on a training-range phantom seed.

    .venv/bin/python tools/make_qc_calibration.py [--stacks 150] [--model focuslitenn-1]

Writes engine/qc/defocus_calibration.json (see engine/qc/calibration.py for the method). The
seed is `engine.qc.calibration.CALIBRATION_SEED`, in the training range (never an evaluation
seed). Prints the fit's figures as JSON.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.evaluation import srcc  # noqa: E402
from engine.fqa.dataset import TRAINING_SEED_BASE, phantom_stacks  # noqa: E402
from engine.fqa.focuslitenn import load_model  # noqa: E402
from engine.qc.calibration import CALIBRATION_SEED, fit_calibration, save_calibration  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stacks", type=int, default=150)
    ap.add_argument("--model", default="focuslitenn-1")
    args = ap.parse_args()
    assert CALIBRATION_SEED >= TRAINING_SEED_BASE
    t0 = time.time()
    st = phantom_stacks([CALIBRATION_SEED], args.stacks, rng_seed=CALIBRATION_SEED + 7, noise=True)
    net = load_model(args.model).eval()
    with torch.inference_mode():
        x = torch.from_numpy(st.images.reshape(-1, *st.images.shape[2:])).permute(0, 3, 1, 2).float() / 255
        scores = torch.cat([net(x[k:k + 64]) for k in range(0, len(x), 64)]).numpy().astype(np.float64)
    labels = st.labels.reshape(-1).astype(np.float64)
    digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in net.state_dict().values())).hexdigest()[:12]
    meta = {"seed": CALIBRATION_SEED, "seed_kind": "training range (>= TRAINING_SEED_BASE), no evaluation seed",
            "stacks": args.stacks, "patches": int(labels.size), "planes_um": "-3..+3 around z*, step 0.5, jittered",
            "noise": "phantom sensor noise", "mpp": 0.25, "weights_sha1_12": digest}
    cal = fit_calibration(scores, labels, args.model, meta=meta)
    est = cal(scores)
    focus, blurry = labels <= 0.5, labels >= 2.0
    cal.meta.update({
        "srcc": srcc(scores, labels),
        "mae_um_raw_score": float(np.abs(scores - labels).mean()),
        "mae_um_calibrated": float(np.abs(est - labels).mean()),
        "in_focus_patches_(label<=0.5um)_estimated_>=1.0um": float((est[focus] >= 1.0).mean()),
        "in_focus_patches_(label<=0.5um)_estimated_>=1.5um": float((est[focus] >= 1.5).mean()),
        "blurry_patches_(label>=2um)_estimated_>=1.0um": float((est[blurry] >= 1.0).mean()),
        "blurry_patches_(label>=2um)_estimated_>=1.5um": float((est[blurry] >= 1.5).mean()),
        "seconds": round(time.time() - t0, 1),
    })
    save_calibration(cal)
    print(json.dumps({"model": cal.model, "scores": cal.scores, "defocus_um": cal.defocus_um, **cal.meta}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
