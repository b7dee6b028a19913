"""`python -m engine ...`: the headless CLI without the viewer."""
import sys

from .cli import main

sys.exit(main())
