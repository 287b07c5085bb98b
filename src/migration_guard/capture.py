"""Keep what migration code prints away from the report stream.

Real histories print: a ``RunPython`` with ``print()``, a backfill reporting its
progress, a subprocess. The audit applies those migrations while the report
(``--format json`` on stdout, piped into a file by CI) must stay parseable. So,
while the audit runs, standard output is redirected at the file-descriptor
level (which also catches subprocesses and C code) and ``sys.stdout`` and
``sys.stderr`` are swapped for buffers; what accumulates is taken per
migration and carried in the report, under the migration that printed it.

Our own messages (progress, warnings through ``logging``) keep going to the
streams they were given before the capture began.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

#: What is kept per migration; the rest is counted.
LIMIT = 64 * 1024


class Capture:
    """Everything printed since the last :meth:`take`."""

    def __init__(self) -> None:
        self._buffer = _Buffer()
        self._file: io.BufferedRandom | None = None
        self._read = 0
        self._saved_fd: int | None = None
        self._saved: tuple[object, object] | None = None

    def start(self) -> None:
        self._saved = (sys.stdout, sys.stderr)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        try:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            self._saved_fd = os.dup(1)
            os.dup2(self._file.fileno(), 1)
        except (OSError, ValueError):  # no file descriptor 1 (embedded interpreters)
            self._close_file()
            self._saved_fd = None
        sys.stdout = self._buffer
        sys.stderr = self._buffer

    def stop(self) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        if self._saved_fd is not None:
            with contextlib.suppress(OSError):
                os.dup2(self._saved_fd, 1)
            with contextlib.suppress(OSError):
                os.close(self._saved_fd)
            self._saved_fd = None
        self._close_file()

    def take(self) -> str:
        """What was printed since the last call (at most :data:`LIMIT` characters)."""
        text = self._buffer.drain()
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.seek(self._read)
                data = self._file.read()
                self._read += len(data)
                text += data.decode("utf-8", "replace")
        if len(text) > LIMIT:
            cut = len(text) - LIMIT
            text = text[:LIMIT] + f"\n[... {cut} more characters not kept]\n"
        return text

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            self._read = 0


class _Buffer(io.TextIOBase):
    """A thread-safe text sink standing in for sys.stdout and sys.stderr."""

    encoding = "utf-8"

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(str(text))
        return len(text)

    def isatty(self) -> bool:
        return False

    def drain(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
        return text


@contextlib.contextmanager
def captured() -> Iterator[Capture]:
    """Capture stdout/stderr for the duration of the block."""
    capture = Capture()
    capture.start()
    try:
        yield capture
    finally:
        capture.stop()
