"""The warm audit of one migration of the real history against ``manage.py check``.

    python benchmarks/warm_one.py [--pairs 9] [--postgres local]

Issue 13's goal: a warm change-mode audit of one migration within 0.7 s of
Django's own start-up (``manage.py check`` of the same project). Builds the
real-history project (``realhistory.py``), fills the cache with one cold audit
of ``wagtailcore 0098_apitoken`` (the base state before it: 412 migrations),
then runs ``check`` and the warm audit alternately (with bytecode written
once, into a folder of the run, as for an installed package), ``--pairs`` times, and
prints the medians of wall time and of CPU time (the command and its
children: PostgreSQL, tar) and the differences within each pair. Figures, not
a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realhistory
from benchmarks.measure import run_measured

TARGET = ("wagtailcore", "0098_apitoken")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--postgres", default="local", help="local or embedded")
    args = parser.parse_args(argv)
    missing = realhistory.available()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mg-warm-one-") as tmp:
        root = realhistory.make_project(Path(tmp) / "real")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "realproject.settings",
            "PYTHONPATH": realhistory.pythonpath(),
            "MIGRATION_GUARD_CACHE_DIR": str(Path(tmp) / "cache"),
        }
        env.pop("DATABASE_URL", None)
        # Bytecode as an installed package has it (pip compiles at install): written once,
        # outside the source tree. Without it every run compiles this package's modules
        # (0.2 s that `check`, importing only the app and the deploy guard, mostly skips).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        check = [sys.executable, "manage.py", "check"]
        audit = [sys.executable, "manage.py", "migration_audit", *TARGET]
        audit += ["--include-third-party", "--postgres", args.postgres]
        cold = run_measured(audit, cwd=root, env=env)
        if cold.returncode not in (0, 1):
            print(cold.stderr[-2000:], file=sys.stderr)
            return 2
        print(f"cold audit (fills the cache): {cold.wall:.2f} s", file=sys.stderr)
        rows = []
        for i in range(args.pairs):
            c = run_measured(check, cwd=root, env=env)
            w = run_measured(audit, cwd=root, env=env)
            if c.returncode != 0 or w.returncode not in (0, 1):
                print((c.stderr + w.stderr)[-2000:], file=sys.stderr)
                return 2
            rows.append((c, w))
            print(
                f"pair {i + 1}: check {c.wall:.2f} s, warm audit {w.wall:.2f} s, "
                f"difference {w.wall - c.wall:+.2f} s",
                file=sys.stderr,
            )

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s"

    walls = [w.wall - c.wall for c, w in rows]
    cpus = [w.cpu - c.cpu for c, w in rows]
    checks, audits = [c for c, _ in rows], [w for _, w in rows]
    print(f"pairs: {len(rows)}")
    print(
        f"manage.py check: wall {med([c.wall for c in checks])}, CPU {med([c.cpu for c in checks])}"
    )
    print(f"warm audit: wall {med([w.wall for w in audits])}, CPU {med([w.cpu for w in audits])}")
    print(f"warm - check, wall: median {med(walls)} ({min(walls):.2f} to {max(walls):.2f})")
    print(f"warm - check, CPU: median {med(cpus)} ({min(cpus):.2f} to {max(cpus):.2f})")
    print("goal: warm - check <= 0.7 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
