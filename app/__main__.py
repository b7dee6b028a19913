"""`python -m app ...`: the same as the `finefocus` console script."""
import sys

from .cli import main

sys.exit(main())
