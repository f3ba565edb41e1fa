"""Progress lines on a terminal; silence when stderr is not a TTY or with --quiet."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    """One status line. Work that runs at the same time (downloads while packages
    unpack) reports under its own `part`; the line shows the parts side by side."""

    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._last = 0.0
        self._width = 0
        self._parts: dict[str, str] = {}

    def status(self, text: str, force: bool = False, part: str = "") -> None:
        """Set this part's text and redraw the line (rate-limited to keep terminals calm)."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            self._parts[part] = text
            if not force and now - self._last < 0.1:
                return
            self._last = now
            self._draw()

    def _draw(self) -> None:
        text = " | ".join(t for t in self._parts.values() if t)
        pad = max(0, self._width - len(text))
        sys.stderr.write("\r" + text + " " * pad)
        sys.stderr.flush()
        self._width = len(text)

    def done(self, text: str | None = None, part: str | None = None) -> None:
        """Clear the line (or only `part` of it), then print `text` as a line of its own."""
        if not self.enabled:
            return
        with self._lock:
            if part is not None:
                self._parts.pop(part, None)
            else:
                self._parts.clear()
            sys.stderr.write("\r" + " " * self._width + "\r")
            self._width = 0
            if text:
                sys.stderr.write(text + "\n")
            if self._parts:
                self._draw()
            sys.stderr.flush()


def info(text: str, quiet: bool = False) -> None:
    """A line worth keeping in logs (always printed unless --quiet)."""
    if not quiet:
        print(text, file=sys.stderr)
