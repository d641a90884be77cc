"""A progress bar for the long ledger commands (verify_run, export_run), on stderr so stdout stays data."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """`[#####.....] 120/400 steps` redrawn in place on a terminal (at most every 0.1 s); elsewhere (a
    pipe, a log) one line at the end, so logs get no carriage returns."""

    def __init__(self, total: int, unit: str, stream: TextIO | None = None, interval: float = 0.1):
        self.total, self.unit, self.done = max(total, 0), unit, 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval
        self._drawn_at = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.live and time.monotonic() - self._drawn_at >= self.interval:
            self._draw("\r")

    def finish(self) -> None:
        self._draw("\r" if self.live else "")
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, prefix: str) -> None:
        self._drawn_at = time.monotonic()
        filled = WIDTH if not self.total else min(WIDTH, WIDTH * self.done // self.total)
        self.stream.write(f"{prefix}[{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total} {self.unit}")
        self.stream.flush()


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
