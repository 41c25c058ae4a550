"""Progress of ``diarize run`` / ``diarize evaluate`` for logs: when stderr is not a terminal
(redirected to a file, a batch system's log) progress bars are off, so a line like

    diarize run: 3/10 recordings, 0:25:12 of 1:18:00 audio (32%), 0:02:05 elapsed, RTF 0.083

is printed every :data:`EVERY` seconds instead (and once at the end). On a terminal the
bars show the same and these lines stay silent."""

from __future__ import annotations

import sys
import threading
import time

EVERY = 5.0  # seconds between two lines


class ProgressLog:
    """Counts recordings and audio seconds done, from any thread; prints when due."""

    def __init__(self, command: str, recordings: int, audio_seconds: float, stream=None):
        self.command, self.recordings, self.total = command, recordings, audio_seconds
        self.stream = stream or sys.stderr
        self.enabled = not self.stream.isatty()
        self.done, self.seconds, self.partial = 0, 0.0, {}  # partial: key -> seconds so far
        self.start = self.last = time.monotonic()
        self.lock = threading.Lock()

    def advance(self, key: object, seconds: float) -> None:
        """``key`` (a recording being diarized) is ``seconds`` into its audio."""
        with self.lock:
            self.partial[key] = seconds
        self._maybe_print()

    def finish(self, key: object, seconds: float) -> None:
        """``key`` is done (or failed): ``seconds`` of its audio count as processed."""
        with self.lock:
            self.partial.pop(key, None)
            self.done += 1
            self.seconds += seconds
        self._maybe_print()

    def close(self) -> None:
        if self.enabled and self.done:
            self._print()

    def line(self) -> str:
        with self.lock:
            seconds = self.seconds + sum(self.partial.values())
        elapsed = time.monotonic() - self.start
        share = f" ({100 * seconds / self.total:.0f}%)" if self.total > 0 else ""
        rtf = f", RTF {elapsed / seconds:.3f}" if seconds > 0 else ""
        return (
            f"diarize {self.command}: {self.done}/{self.recordings} recordings, "
            f"{_clock(seconds)} of {_clock(self.total)} audio{share}, "
            f"{_clock(elapsed)} elapsed{rtf}"
        )

    def _maybe_print(self) -> None:
        if not self.enabled:
            return
        with self.lock:  # one line per period, whichever thread gets here first
            if time.monotonic() - self.last < EVERY:
                return
            self.last = time.monotonic()
        self._print()

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
