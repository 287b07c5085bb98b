"""Run a command as a child process and measure it: wall time, CPU time, peak memory.

* wall: ``time.monotonic()`` around the whole process (interpreter start to exit);
* cpu: user + system time of the child *and every descendant it waited for*
  (``os.wait4``): for an audit on a throwaway cluster that includes the
  PostgreSQL server it started;
* peak RSS of the Python process itself: ``VmHWM`` (the kernel's high-water mark
  of resident memory) read from ``/proc/<pid>/status`` every 20 ms; the mark only
  grows, so the last reading before exit is the peak (Linux only, else None);
* peak RSS of the process tree: ``ru_maxrss`` from ``os.wait4``: the largest of
  the child and its waited-for descendants (the PostgreSQL server's pages of
  shared memory count there).

``wait4`` on this one child rather than ``getrusage(RUSAGE_CHILDREN)`` deltas:
``ru_maxrss`` of RUSAGE_CHILDREN is a maximum over every child ever waited for,
so a delta says nothing when an earlier child was bigger.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux


@dataclasses.dataclass(frozen=True)
class Measurement:
    argv: tuple[str, ...]
    returncode: int
    wall: float
    cpu: float
    #: Peak resident memory of the child process itself (bytes), None where unknown.
    peak_rss: int | None
    #: Largest peak resident memory in the child's waited-for process tree (bytes).
    tree_max_rss: int
    stdout: str
    stderr: str

    @property
    def peak_rss_mb(self) -> float | None:
        return self.peak_rss / 2**20 if self.peak_rss is not None else None

    @property
    def tree_max_rss_mb(self) -> float:
        return self.tree_max_rss / 2**20


def _vm_hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Measurement:
    """Run ``argv`` to completion and measure it (stdout and stderr are captured)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        started = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        peak: list[int | None] = [None]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                value = _vm_hwm(proc.pid)
                if value is not None:
                    peak[0] = value
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = None
        if timeout is not None:

            def kill() -> None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    time.sleep(5)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.daemon = True
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            done.set()
            if timer is not None:
                timer.cancel()
        wall = time.monotonic() - started
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return Measurement(
        argv=tuple(argv),
        returncode=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss=peak[0],
        tree_max_rss=usage.ru_maxrss * _MAXRSS_UNIT,
        stdout=stdout,
        stderr=stderr,
    )
