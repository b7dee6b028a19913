"""Write engine/phantom/calibration_table.py: the coarse-level calibration of the default
tissue of each tissue version (H&E and IHC), so a cold overview needs no calibration renders.

    .venv/bin/python tools/make_calibration_table.py
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.phantom.tissue_params import TISSUE_VERSIONS, tissue_params  # noqa: E402
from engine.phantom.volume import TissueVolume  # noqa: E402

OUT = REPO / "engine" / "phantom" / "calibration_table.py"


def main() -> int:
    head = OUT.read_text().split("TABLE: dict = ")[0]   # keep the module docstring
    lines = ["TABLE: dict = {"]
    for version, stain in ((v, st) for v in TISSUE_VERSIONS for st in ("he", "ihc")):
        vol = TissueVolume(0, stain=stain, params=tissue_params(version))
        cal = vol.measure_calibration()
        tag = stain if version == 1 else f"{stain}, tissue version {version}"
        lines.append(f"    {vol.calibration_key()!r}: {{  # {tag}")
        for name, v in cal.items():
            lines.append(f"        {name!r}: ({', '.join(f'{float(x):.6f}' for x in v)}),")
        lines.append("    },")
    lines.append("}")
    OUT.write_text(head + "\n".join(lines) + "\n")
    print(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
