"""A progress bar for a QC batch on stderr: chunks scored and slides finished.

On a terminal one line is redrawn in place (at most 5 times a second); elsewhere (a log file, CI)
one line is printed per finished slide, so logs stay short."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, slides: int, stream: TextIO | None = None, enabled: bool = True, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self.slides, self.slides_done, self.errors = slides, 0, 0
        self.chunks, self.chunks_done = 0, 0
        self.skipped = 0
        self._last = 0.0

    def add_chunks(self, n: int) -> None:
        self.chunks += n
        self._draw()

    def chunk_done(self) -> None:
        self.chunks_done += 1
        self._draw()

    def slide_done(self, path: str, verdict: str, skipped: bool = False) -> None:
        self.slides_done += 1
        self.skipped += skipped
        self.errors += verdict == "error"
        if self.enabled and not self.tty:
            what = "skipped (done before)" if skipped else verdict
            print(f"qc {self.slides_done}/{self.slides} {path}: {what}", file=self.stream, flush=True)
        self._draw(force=True)

    def line(self) -> str:
        frac = self.chunks_done / self.chunks if self.chunks else (1.0 if self.slides_done >= self.slides else 0.0)
        fill = int(round(frac * self.width))
        return (f"qc [{'#' * fill}{'.' * (self.width - fill)}] {100 * frac:3.0f}%  "
                f"{self.chunks_done}/{self.chunks} chunks  {self.slides_done}/{self.slides} slides"
                + (f"  {self.errors} errors" if self.errors else ""))

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        self.stream.write("\r" + self.line())
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
