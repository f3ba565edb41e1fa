"""Progress lines on a terminal; silence when stderr is not a TTY or with --quiet."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._last = 0.0
        self._width = 0

    def status(self, text: str, force: bool = False) -> None:
        """Overwrite the current status line (rate-limited to keep terminals calm)."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < 0.1:
                return
            self._last = now
            pad = max(0, self._width - len(text))
            sys.stderr.write("\r" + text + " " * pad)
            sys.stderr.flush()
            self._width = len(text)

    def done(self, text: str | None = None) -> None:
        if not self.enabled:
            return
        with self._lock:
            sys.stderr.write("\r" + " " * self._width + "\r")
            if text:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()
            self._width = 0


def info(text: str, quiet: bool = False) -> None:
    """A line worth keeping in logs (always printed unless --quiet)."""
    if not quiet:
        print(text, file=sys.stderr)
