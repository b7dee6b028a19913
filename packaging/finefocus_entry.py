"""Entry point of the desktop bundle (PyInstaller): the same `finefocus` command as the venv's
console script. ``freeze_support`` lets the bundle start its own worker processes (the Dask
LocalCluster of `finefocus qc`, spawned processes of the tile store)."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
