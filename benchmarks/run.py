"""Benchmark: auditing a change on top of a long history, against ``manage.py migrate``.

Prints figures; it is not a test. Run it from a checkout with the project's
virtualenv active:

    python benchmarks/run.py                      # 40 apps x 10 migrations, PostgreSQL "local"
    python benchmarks/run.py --postgres embedded  # the PostgreSQL wheel instead
    python benchmarks/run.py --profile            # also cProfile a cold audit

Method
------
1. ``benchmarks/genproject.py`` writes a Django project (default 40 apps of 10
   migrations: 400 migrations, each app's foreign keys pointing at earlier
   apps, the last app depending on every other) into a temporary folder that
   is a git repository: the first commit holds the history, the second adds
   the last 3 migrations, which carry hazards. ``migration_audit --since
   HEAD~1`` therefore audits those 3 migrations as one change, on top of a
   base state of every migration before them (the product command as is).
2. One throwaway server is started with ``migration_guard.postgres`` (source
   ``local`` by default, ``--postgres embedded``). ``manage.py migrate`` runs
   against a database of its own there (``DATABASE_URL``): the reference.
3. The audits run with ``--postgres local`` (or ``embedded``), so each starts
   its own cluster from the same binaries with the same settings as the
   reference server: the base-state cache only exists for such throwaway
   clusters. ``MIGRATION_GUARD_CACHE_DIR`` points at an empty folder for the
   cold run; the warm run is the same command again with that folder filled.
   Extras: the same audit with ``--no-cache`` (cold without saving the cache)
   and with ``--database-url`` on the reference server (no cluster to start,
   no cache: the audit's own work only).
4. Each command is a separate process, measured from the outside
   (``benchmarks/measure.py``): wall time, CPU time (user + system, of the
   process and of everything it waited for, i.e. the audit's own PostgreSQL;
   for ``migrate`` and the ``--database-url`` audit the shared server's CPU
   during the run is added, read from ``/proc``), the peak resident memory of
   the Python process (``VmHWM``) and the largest peak in its process tree.
5. Breakdown: the cold and warm audits and ``migrate`` run once more under
   ``benchmarks/phases.py``, which times the phases (Django start-up, graph
   loading, initdb, cache restore and store, base application, tracing,
   rules...) from inside the process.

Targets: cold audit / migrate <= 1.2 (wall), warm audit < 3 s (wall).

Wall times depend on how busy the machine is; CPU times much less. The load
average is printed next to the figures: when it exceeds the number of CPUs,
compare CPU times, or use ``--repeat N`` (the best of N runs is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))

from benchmarks.genproject import GeneratedProject, generate  # noqa: E402
from benchmarks.measure import Measurement, run_measured  # noqa: E402

TARGET_COLD_RATIO = 1.2
TARGET_WARM_WALL = 3.0


def _server_cpu(pid: int | None) -> float:
    """CPU seconds of a postmaster and of the backends it has reaped (Linux)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # fields after "(comm)": state is [0]; utime, stime, cutime, cstime are [11:15]
    return sum(int(x) for x in fields[11:15]) / ticks


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="mg-bench-"))
        self.project: GeneratedProject | None = None
        self.rows: list[tuple[str, Measurement, float]] = []
        self.results: dict[str, Any] = {}
        self.python = sys.executable

    # -- environment --------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MIGRATION_GUARD_") and k not in ("DATABASE_URL", "PGDATA")
        }
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra)
        return env

    def manage(self, *args: str) -> list[str]:
        return [self.python, "manage.py", *args]

    def audit_args(self, report: Path, *extra: str) -> list[str]:
        return [
            "migration_audit",
            "--since",
            "HEAD~1",
            "--format",
            "json",
            "--output",
            str(report),
            "-v",
            "1",
            *extra,
        ]

    # -- running ------------------------------------------------------------------------
    def measure(
        self,
        label: str,
        argv: list[str],
        env: dict[str, str],
        *,
        ok: tuple[int, ...] = (0,),
        server_pid: int | None = None,
        before: Any = None,
    ) -> Measurement:
        """Run ``argv`` ``--repeat`` times; keep the fastest; record it as a row."""
        best: Measurement | None = None
        best_server = 0.0
        for _ in range(max(1, self.args.repeat)):
            if before is not None:
                before()
            cpu0 = _server_cpu(server_pid)
            m = run_measured(argv, cwd=self.project_root, env=env, timeout=self.args.timeout)
            time.sleep(0.3 if server_pid else 0)  # let the postmaster reap the backend
            server = _server_cpu(server_pid) - cpu0
            if m.returncode not in ok:
                sys.stderr.write(m.stdout[-3000:] + m.stderr[-6000:])
                raise SystemExit(f"{label}: exit status {m.returncode} (expected {ok})")
            if best is None or m.wall < best.wall:
                best, best_server = m, server
        assert best is not None
        self.rows.append((label, best, best_server))
        print(
            f"  {label}: {best.wall:.2f} s wall, {best.cpu + best_server:.2f} s CPU",
            file=sys.stderr,
        )
        return best

    @property
    def project_root(self) -> Path:
        assert self.project is not None
        return self.project.root

    def check_report(self, path: Path) -> dict[str, Any]:
        assert self.project is not None
        data = json.loads(path.read_text())
        names = {(m["app_label"], m["name"]) for m in data["migrations"]}
        missing = set(self.project.change) - names
        if missing:
            raise SystemExit(f"{path}: migrations missing from the report: {sorted(missing)}")
        return data

    # -- the benchmark ----------------------------------------------------------------------
    def run(self) -> None:
        from migration_guard.postgres import PostgresOptions, open_server

        args = self.args
        print(f"load average before: {_load()}", file=sys.stderr)
        started = time.monotonic()
        self.project = generate(
            self.root / "project",
            apps=args.apps,
            migrations=args.migrations,
            seed=args.seed,
            change=args.change,
            hazards=min(3, args.change, args.migrations - 1),
            git=True,
        )
        self.results["project"] = {
            "apps": len(self.project.apps),
            "migrations": len(self.project.migrations),
            "change": [".".join(k) for k in self.project.change],
            "base": self.project.base,
            "generated_in": round(time.monotonic() - started, 2),
        }
        print(
            f"generated {len(self.project.migrations)} migrations in "
            f"{len(self.project.apps)} apps; change: {len(self.project.change)} migrations "
            f"on top of {self.project.base}",
            file=sys.stderr,
        )
        with open_server(PostgresOptions(source=args.postgres)) as server:
            self.results["postgres"] = server.description
            info = server.info
            pid = getattr(server, "pid", None)

            def fresh_database(name: str) -> str:
                with info.connect(autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    conn.execute(f'CREATE DATABASE "{name}"')
                return f"postgresql://{info.user}@/{name}?host={info.host}&port={info.port}"

            url = {"value": ""}

            def new_migrate_db() -> None:
                url["value"] = fresh_database("bench_migrate")

            self.measure("manage.py check (Django start-up)", self.manage("check"), self.env())
            # migrate: the database is recreated before each repetition
            migrate_env = self.env()

            def before_migrate() -> None:
                new_migrate_db()
                migrate_env["DATABASE_URL"] = url["value"]

            migrate = self.measure(
                "manage.py migrate (whole history)",
                self.manage("migrate", "-v", "0"),
                migrate_env,
                server_pid=pid,
                before=before_migrate,
            )
            cache = self.root / "cache"
            cache_env = self.env(MIGRATION_GUARD_CACHE_DIR=str(cache))
            src = ["--postgres", args.postgres]

            def empty_cache() -> None:
                shutil.rmtree(cache, ignore_errors=True)

            cold_report = self.root / "cold.json"
            cold = self.measure(
                "audit, cold (empty cache)",
                self.manage(*self.audit_args(cold_report, *src)),
                cache_env,
                ok=(0, 1),
                before=empty_cache,
            )
            self.check_report(cold_report)
            warm_report = self.root / "warm.json"
            warm = self.measure(
                "audit, warm (cache filled)",
                self.manage(*self.audit_args(warm_report, *src)),
                cache_env,
                ok=(0, 1),
            )
            warm_data = self.check_report(warm_report)
            self.results["warm_notes"] = warm_data.get("notes", [])
            if not args.skip_extras:
                report = self.root / "nocache.json"
                self.measure(
                    "audit, --no-cache",
                    self.manage(*self.audit_args(report, *src, "--no-cache")),
                    cache_env,
                    ok=(0, 1),
                )
                self.check_report(report)
                report = self.root / "url.json"
                self.measure(
                    "audit, --database-url (reference server)",
                    self.manage(*self.audit_args(report, "--database-url", info.conninfo())),
                    self.env(),
                    ok=(0, 1),
                    server_pid=pid,
                )
                self.check_report(report)
            self.results["load_after"] = _load()
            self.print_table(migrate, cold, warm)
            if not args.no_breakdown:
                self.breakdown(src, new_migrate_db, url)
            if args.profile:
                self.profile(src)
        self.results["total_seconds"] = round(time.monotonic() - started, 1)
        self.save()

    # -- output -------------------------------------------------------------------------
    def print_table(self, migrate: Measurement, cold: Measurement, warm: Measurement) -> None:
        print()
        print(f"Project: {self.results['project']}")
        print(f"PostgreSQL: {self.results['postgres']}")
        print(f"CPUs: {os.cpu_count()}; load average during the runs: {self.results['load_after']}")
        print()
        header = (
            f"{'run':45s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS':>9s} {'tree max':>9s} "
            f"{'exit':>4s}"
        )
        print(header)
        print("-" * len(header))
        rows = []
        for label, m, server in self.rows:
            peak = f"{m.peak_rss_mb:.0f} MB" if m.peak_rss_mb is not None else "?"
            print(
                f"{label:45s} {m.wall:8.2f} {m.cpu + server:8.2f} {peak:>9s} "
                f"{m.tree_max_rss_mb:6.0f} MB {m.returncode:4d}"
            )
            rows.append(
                {
                    "run": label,
                    "wall": round(m.wall, 3),
                    "cpu": round(m.cpu + server, 3),
                    "cpu_server_part": round(server, 3),
                    "peak_rss_mb": round(m.peak_rss_mb, 1) if m.peak_rss_mb else None,
                    "tree_max_rss_mb": round(m.tree_max_rss_mb, 1),
                    "exit": m.returncode,
                }
            )
        self.results["runs"] = rows
        cpu = {label: m.cpu + s for label, m, s in self.rows}
        ratio_wall = cold.wall / migrate.wall
        ratio_cpu = cpu["audit, cold (empty cache)"] / cpu["manage.py migrate (whole history)"]
        print()
        print("CPU: user + system of the process and its own server; for migrate and the")
        print("--database-url audit the shared server's CPU during the run is included.")
        print()
        verdict = "ok" if ratio_wall <= TARGET_COLD_RATIO else "MISSED"
        print(
            f"cold audit / migrate: {ratio_wall:.2f} wall, {ratio_cpu:.2f} CPU "
            f"(target <= {TARGET_COLD_RATIO}: {verdict})"
        )
        verdict = "ok" if warm.wall < TARGET_WARM_WALL else "MISSED"
        print(f"warm audit: {warm.wall:.2f} s wall (target < {TARGET_WARM_WALL:.0f} s: {verdict})")
        print(
            f"warm / cold: {warm.wall / cold.wall:.2f} wall; peak RSS of the audit: "
            f"{cold.peak_rss_mb or 0:.0f} MB cold, {warm.peak_rss_mb or 0:.0f} MB warm "
            f"(migrate {migrate.peak_rss_mb or 0:.0f} MB)"
        )
        self.results["ratios"] = {
            "cold_over_migrate_wall": round(ratio_wall, 3),
            "cold_over_migrate_cpu": round(ratio_cpu, 3),
            "warm_wall": round(warm.wall, 3),
        }

    def breakdown(self, src: list[str], new_migrate_db: Any, url: dict[str, str]) -> None:
        phases = str(BENCH_DIR / "phases.py")
        cache = self.root / "cache-phases"
        env = self.env(MIGRATION_GUARD_CACHE_DIR=str(cache))
        out: dict[str, dict[str, Any]] = {}
        for label, argv, run_env, ok in (
            (
                "audit cold",
                self.audit_args(self.root / "p-cold.json", *src),
                env,
                (0, 1),
            ),
            (
                "audit warm",
                self.audit_args(self.root / "p-warm.json", *src),
                env,
                (0, 1),
            ),
            ("migrate", ["migrate", "-v", "0"], None, (0,)),
        ):
            if run_env is None:
                new_migrate_db()
                run_env = self.env(DATABASE_URL=url["value"])
            target = self.root / f"phases-{label.replace(' ', '-')}.json"
            m = run_measured(
                [self.python, phases, str(target), *argv],
                cwd=self.project_root,
                env=run_env,
                timeout=self.args.timeout,
            )
            if m.returncode not in ok:
                sys.stderr.write(m.stderr[-4000:])
                raise SystemExit(f"phases of {label}: exit status {m.returncode}")
            data = json.loads(target.read_text())
            data.pop("_not_timed", None)
            data["(process, measured outside)"] = {"wall": m.wall, "cpu": m.cpu, "calls": 1}
            out[label] = data
        self.results["phases"] = out
        print()
        print("Where the time goes (benchmarks/phases.py; timers nest, CPU is this process only)")
        for label, data in out.items():
            print()
            print(f"  {label}")
            print(f"  {'phase':52s} {'wall s':>8s} {'CPU s':>8s} {'calls':>6s}")
            for name, v in sorted(data.items(), key=lambda kv: -kv[1]["wall"]):
                if v["wall"] < 0.02:
                    continue
                print(f"  {name:52s} {v['wall']:8.2f} {v['cpu']:8.2f} {v['calls']:6d}")

    def profile(self, src: list[str]) -> None:
        cache = self.root / "cache-profile"
        target = self.root / "cold.prof"
        m = run_measured(
            [
                self.python,
                "-m",
                "cProfile",
                "-o",
                str(target),
                "manage.py",
                *self.audit_args(self.root / "prof.json", *src),
            ],
            cwd=self.project_root,
            env=self.env(MIGRATION_GUARD_CACHE_DIR=str(cache)),
            timeout=self.args.timeout,
        )
        if m.returncode not in (0, 1):
            sys.stderr.write(m.stderr[-4000:])
            raise SystemExit(f"profiled audit: exit status {m.returncode}")
        stats = pstats.Stats(str(target))
        total = stats.total_tt  # type: ignore[attr-defined]
        interesting = {
            ("executor.py", "apply_migration"): "MigrationExecutor.apply_migration",
            ("migration.py", "apply"): "Migration.apply (state + schema editor)",
            ("state.py", "clone"): "ProjectState/StateApps.clone (per operation)",
            ("copy.py", "deepcopy"): "copy.deepcopy (inside clone)",
            ("state.py", "render_multiple"): "StateApps.render_multiple",
            ("state.py", "reload_model"): "ProjectState.reload_model",
            ("state.py", "_reload"): "ProjectState._reload",
            ("base.py", "database_forwards"): "operation.database_forwards",
            ("utils.py", "_execute"): "CursorWrapper._execute (SQL)",
            ("schema.py", "execute"): "schema_editor.execute",
            ("__init__.py", "setup"): "django.setup",
            ("loader.py", "build_graph"): "MigrationLoader.build_graph",
            ("sql.py", "emit_post_migrate_signal"): "post_migrate",
            ("local.py", "_initdb"): "initdb",
            ("local.py", "save_data"): "cache store",
            ("scratch.py", "drop_database"): "drop scratch database",
        }
        found: dict[str, float] = {}
        for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            for (suffix, name), label in interesting.items():
                if func == name and filename.endswith(suffix):
                    found[label] = max(found.get(label, 0.0), ct)
        print()
        print(f"cProfile of a cold audit: {total:.1f} s profiled (profiling slows Python ~2x)")
        for label, ct in sorted(found.items(), key=lambda kv: -kv[1]):
            print(f"  {label:52s} {ct:8.2f} s cumulative ({ct / total:5.1%})")
        self.results["profile"] = {k: round(v, 3) for k, v in found.items()}
        print("  top functions by own time:")
        stats.sort_stats("tottime").print_stats(12)

    def save(self) -> None:
        out = BENCH_DIR / "out"
        out.mkdir(exist_ok=True)
        path = out / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(self.results, indent=2, default=str))
        print(f"\nfigures saved to {path.relative_to(BENCH_DIR.parent)}")

    def cleanup(self) -> None:
        if self.args.keep:
            print(f"kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Audit of a long migration history against manage.py migrate."
    )
    parser.add_argument("--apps", type=int, default=40)
    parser.add_argument("--migrations", type=int, default=10, help="Migrations per app.")
    parser.add_argument("--change", type=int, default=3, help="Trailing migrations audited.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", choices=["local", "embedded"], default="local")
    parser.add_argument("--repeat", type=int, default=1, help="Keep the best of N runs.")
    parser.add_argument("--timeout", type=float, default=1800.0, help="Per command, seconds.")
    parser.add_argument("--skip-extras", action="store_true", help="No --no-cache/url audits.")
    parser.add_argument("--no-breakdown", action="store_true", help="Skip the phase timings.")
    parser.add_argument("--profile", action="store_true", help="cProfile a cold audit.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args(argv)
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("git is needed (the change is selected with --since HEAD~1)")
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
