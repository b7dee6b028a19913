"""Where tests find things outside the repository."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data beside the clone (CI layout), or $FINEFOCUS_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("FINEFOCUS_SHARED_DATA", REPO.parent / "shared" / "data"))
