"""Benchmark: what ``--rehearse`` costs on sample_apps, next to the plain traced audit.

Prints figures; it is not a test. From a checkout with the project's virtualenv
active:

    python benchmarks/rehearse.py                    # 3 interleaved rounds, PostgreSQL "local"
    python benchmarks/rehearse.py --rounds 5 --rows 100000
    python benchmarks/rehearse.py --postgres embedded

Method
------
Both commands audit every migration of sample_apps (``migration_audit --all``,
each migration judged as a change of its own: 60 migrations), each in its own
process measured from outside (``benchmarks/measure.py``: wall time, and CPU
time of the process and of the throwaway PostgreSQL it started):

* **traced**: the plain audit (the floor);
* **rehearse**: the same with ``--rehearse``: the touched tables seeded, and
  the previous release's traffic around every migration that touches a table
  of it.

Both use one private base-state cache, filled by an unmeasured run first, so
neither pays for building it. The rounds are interleaved (traced, rehearse,
traced, rehearse...) so each pair shares the machine's load of the moment;
the ratio is taken within each round, and the median of those is compared
with the goal (under 3x the traced audit, on 2 cores). The rehearsal's own
account of its cost (``rehearsal.seconds`` in the JSON report: seeding, and
the traffic before and after each migration) is printed next to it: the rest
of the difference is the migrations themselves, slower on tables with rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))

from benchmarks.measure import Measurement, run_measured  # noqa: E402

SAMPLE = BENCH_DIR.parent / "sample_apps"
GOAL = 3.0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _audit(
    args: argparse.Namespace, cache: Path, report: Path, *extra: str
) -> tuple[Measurement, dict[str, Any]]:
    env = {**os.environ, "MIGRATION_GUARD_CACHE_DIR": str(cache)}
    for key in ("DJANGO_SETTINGS_MODULE", "GITHUB_ACTIONS", "MIGRATION_GUARD_DATABASE_URL"):
        env.pop(key, None)
    argv = [
        sys.executable,
        "manage.py",
        "migration_audit",
        "--all",
        "--postgres",
        args.postgres,
        "--no-color",
        "--format",
        "json",
        "--output",
        str(report),
        *extra,
    ]
    measured = run_measured(argv, cwd=SAMPLE, env=env, timeout=args.timeout)
    if measured.returncode not in (0, 1):
        raise SystemExit(
            f"{' '.join(argv[2:])} failed ({measured.returncode}):\n{measured.stderr[-2000:]}"
        )
    return measured, json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="--rehearse on sample_apps vs the traced audit.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", choices=["local", "embedded"], default="local")
    parser.add_argument("--rows", type=int, help="--rehearse-rows (default: the product's).")
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args(argv)
    rehearse = ["--rehearse"] + (["--rehearse-rows", str(args.rows)] if args.rows else [])
    folder = Path(tempfile.mkdtemp(prefix="mg-bench-rehearse-"))
    try:
        cache = folder / "cache"
        print(f"sample_apps --all, PostgreSQL {args.postgres}, {os.cpu_count()} CPUs")
        print(f"load average before: {_load()}")
        _audit(args, cache, folder / "warm.json")  # fills the base-state cache
        traced: list[Measurement] = []
        rehearsed: list[Measurement] = []
        costs: list[dict[str, Any]] = []
        for number in range(1, args.rounds + 1):
            plain, _ = _audit(args, cache, folder / "traced.json")
            full, report = _audit(args, cache, folder / "rehearse.json", *rehearse)
            traced.append(plain)
            rehearsed.append(full)
            costs.append(report.get("rehearsal") or {})
            print(
                f"round {number}: traced {plain.wall:.1f}s, rehearse {full.wall:.1f}s "
                f"(ratio {full.wall / plain.wall:.2f}; rehearsal's own account "
                f"{costs[-1].get('seconds', 0):.1f}s, seeding "
                f"{costs[-1].get('seed_seconds', 0):.1f}s); load {_load()}"
            )
        print()
        print(f"{'run':<34}{'wall, median':>14}{'best':>8}{'CPU, median':>14}")
        for name, runs in (("audit --all, traced", traced), ("audit --all --rehearse", rehearsed)):
            walls = [m.wall for m in runs]
            cpus = [m.cpu for m in runs]
            print(
                f"{name:<34}{statistics.median(walls):>13.1f}s{min(walls):>7.1f}s"
                f"{statistics.median(cpus):>13.1f}s"
            )
        ratios = [r.wall / t.wall for t, r in zip(traced, rehearsed, strict=True)]
        cpu_ratios = [r.cpu / t.cpu for t, r in zip(traced, rehearsed, strict=True)]
        last = costs[-1]
        print()
        print(
            f"rehearsal's cost (its own account, median): "
            f"{statistics.median(c.get('seconds', 0) for c in costs):.1f}s, of which seeding "
            f"{statistics.median(c.get('seed_seconds', 0) for c in costs):.1f}s; "
            f"{last.get('migrations', 0)} migrations under traffic, "
            f"{last.get('queries', 0):,} queries, {last.get('rows', 0):,} rows per table"
        )
        print(
            "rehearse / traced, wall: median "
            f"{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}); "
            f"CPU: median {statistics.median(cpu_ratios):.2f}; goal < {GOAL:g}"
        )
        print(f"load average after: {_load()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
