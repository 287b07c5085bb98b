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

The whole sequence (migrate, cold, warm, extras) runs ``--rounds`` times
(default 3), interleaved, so that each round's commands share the machine's
conditions of the moment; the table gives the median and the best of each,
and the cold/migrate ratio is taken within each round, then the median of
those. Wall times depend on how busy the machine is, CPU times much less: the
load average is printed with the figures; on a busy machine compare CPU times.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))

from benchmarks import realhistory  # noqa: E402
from benchmarks.genproject import GeneratedProject, generate  # noqa: E402
from benchmarks.measure import Measurement, run_measured  # noqa: E402

TARGET_COLD_RATIO = 1.2
TARGET_WARM_WALL = 3.0

CHECK = "manage.py check (Django start-up)"
MIGRATE = "manage.py migrate (whole history)"
COLD = "audit, cold (empty cache)"
WARM = "audit, warm (cache filled)"
NO_CACHE = "audit, --no-cache"
R_CHECK = "real: manage.py check"
R_MIGRATE = "real: manage.py migrate (whole history)"
R_ALL = "real: audit --all, cold, traced"
R_STATIC = "real: audit --all --no-trace"
R_CHANGE_COLD = "real: change of 3 apps, cold"
R_CHANGE_WARM = "real: change of 3 apps, warm"
CM_MIGRATE = "change mode: manage.py migrate"
CM_COLD = "change mode: audit, cold"
CM_WARM = "change mode: audit, warm"
URL = "audit, --database-url (reference server)"


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
        #: label -> one (measurement, server CPU) per round
        self.samples: dict[str, list[tuple[Measurement, float]]] = collections.defaultdict(list)
        self.results: dict[str, Any] = {}
        self.python = sys.executable
        #: The real-history project while its case runs.
        self.real_root: Path | None = None

    # -- environment --------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MIGRATION_GUARD_") and k not in ("DATABASE_URL", "PGDATA")
        }
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["DJANGO_SETTINGS_MODULE"] = "project.settings"
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
    ) -> Measurement:
        """Run ``argv`` once, check its exit status, record it under ``label``."""
        cpu0 = _server_cpu(server_pid)
        m = run_measured(argv, cwd=self.project_root, env=env, timeout=self.args.timeout)
        if server_pid:
            time.sleep(0.3)  # let the postmaster reap the backend
        server = _server_cpu(server_pid) - cpu0
        if m.returncode not in ok:
            sys.stderr.write(m.stdout[-3000:] + m.stderr[-6000:])
            raise SystemExit(f"{label}: exit status {m.returncode} (expected {ok})")
        self.samples[label].append((m, server))
        print(
            f"  {label}: {m.wall:.2f} s wall, {m.cpu + server:.2f} s CPU (load {_load()})",
            file=sys.stderr,
        )
        return m

    @property
    def project_root(self) -> Path:
        if self.real_root is not None:
            return self.real_root
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
        if args.case == "real":
            with open_server(PostgresOptions(source=args.postgres)) as server:
                self.results["postgres"] = server.description
                self.real(server)
                self.results["load_after"] = _load()
                self.print_real()
            self.results["total_seconds"] = round(time.monotonic() - started, 1)
            self.save()
            return
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

            cache = self.root / "cache"
            cache_env = self.env(MIGRATION_GUARD_CACHE_DIR=str(cache))
            src = ["--postgres", args.postgres]
            for round_ in range(1, max(1, args.rounds) + 1):
                print(f"round {round_}/{args.rounds}", file=sys.stderr)
                self.measure(CHECK, self.manage("check"), self.env())
                new_migrate_db()
                self.measure(
                    MIGRATE,
                    self.manage("migrate", "-v", "0"),
                    self.env(DATABASE_URL=url["value"]),
                    server_pid=pid,
                )
                shutil.rmtree(cache, ignore_errors=True)
                report = self.root / "cold.json"
                self.measure(
                    COLD, self.manage(*self.audit_args(report, *src)), cache_env, ok=(0, 1)
                )
                self.check_report(report)
                report = self.root / "warm.json"
                self.measure(
                    WARM, self.manage(*self.audit_args(report, *src)), cache_env, ok=(0, 1)
                )
                self.results["warm_notes"] = self.check_report(report).get("notes", [])
                if args.skip_extras:
                    continue
                report = self.root / "nocache.json"
                self.measure(
                    NO_CACHE,
                    self.manage(*self.audit_args(report, *src, "--no-cache")),
                    cache_env,
                    ok=(0, 1),
                )
                self.check_report(report)
                report = self.root / "url.json"
                self.measure(
                    URL,
                    self.manage(
                        *self.audit_args(
                            report, "--database-url", info.conninfo(), "--allow-privileged-role"
                        )
                    ),
                    self.env(),
                    ok=(0, 1),
                    server_pid=pid,
                )
                self.check_report(report)
            if not args.skip_change_mode:
                self.change_mode(src, fresh_database, pid)
            if args.case == "both":
                self.real(server)
            self.results["load_after"] = _load()
            self.print_table()
            if args.case == "both":
                self.print_real()
            if not args.no_breakdown:
                self.breakdown(src, new_migrate_db, url)
            if args.profile:
                self.profile(src)
        self.results["total_seconds"] = round(time.monotonic() - started, 1)
        self.save()

    def change_mode(self, src: list[str], fresh_database: Any, pid: int | None) -> None:
        """A merge request spanning several apps: a change of 30 migrations in 5 apps
        (``--change-mode-size``/``--change-mode-apps``) on a history of the same size,
        audited with ``--since HEAD~1`` as CI does, next to ``migrate`` of that history."""
        args = self.args
        main = self.project
        self.project = generate(
            self.root / "project-change",
            apps=args.apps,
            migrations=args.migrations,
            seed=args.seed + 1,
            change=args.change_mode_size,
            change_apps=args.change_mode_apps,
            hazards=min(2, args.migrations - 1),
            hazard_apps=args.change_mode_apps,
            git=True,
        )
        self.results["change_mode_project"] = {
            "migrations": len(self.project.migrations),
            "change": len(self.project.change),
            "apps": sorted({app for app, _ in self.project.change}),
            "base": self.project.base,
        }
        cache = self.root / "cache-change"
        cache_env = self.env(MIGRATION_GUARD_CACHE_DIR=str(cache))
        try:
            for round_ in range(1, max(1, args.rounds) + 1):
                print(f"change mode, round {round_}/{args.rounds}", file=sys.stderr)
                url = fresh_database("bench_change")
                self.measure(
                    CM_MIGRATE,
                    self.manage("migrate", "-v", "0"),
                    self.env(DATABASE_URL=url),
                    server_pid=pid,
                )
                shutil.rmtree(cache, ignore_errors=True)
                for label in (CM_COLD, CM_WARM):
                    report = self.root / f"{label.split()[-1]}-change.json"
                    self.measure(
                        label, self.manage(*self.audit_args(report, *src)), cache_env, ok=(0, 1)
                    )
                    self.check_report(report)
        finally:
            self.project = main

    def real(self, server: Any) -> None:
        """The real-history case (benchmarks/realhistory.py), interleaved over rounds."""
        missing = realhistory.available()
        if missing:
            print(f"real-history case skipped: {missing}", file=sys.stderr)
            return
        args = self.args
        info = server.info
        pid = getattr(server, "pid", None)
        self.real_root = realhistory.make_project(self.root / "real")

        def database(name: str) -> str:
            with info.connect(autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            return f"postgresql://{info.user}@/{name}?host={info.host}&port={info.port}"

        def env(**extra: str) -> dict[str, str]:
            return self.env(
                DJANGO_SETTINGS_MODULE="realproject.settings",
                PYTHONPATH=realhistory.pythonpath(),
                **extra,
            )

        cut_url = database("bench_real_cut")
        unapplied = realhistory.record_cut(self.real_root, env(DATABASE_URL=cut_url))
        self.results["real_project"] = {
            "change": len(unapplied),
            "apps": sorted({app for app, _ in unapplied}),
        }
        cache = self.root / "cache-real"
        src = ["--postgres", args.postgres]
        try:
            for round_ in range(1, max(1, args.rounds) + 1):
                print(f"real history, round {round_}/{args.rounds}", file=sys.stderr)
                self.measure(R_CHECK, self.manage("check"), env())
                url = database("bench_real_migrate")
                self.measure(
                    R_MIGRATE,
                    self.manage("migrate", "-v", "0"),
                    env(DATABASE_URL=url),
                    server_pid=pid,
                )
                every = ["--all", "--include-third-party", "--format", "json", "--output"]
                self.measure(
                    R_ALL,
                    self.manage("migration_audit", *every, str(self.root / "r-all.json"), *src),
                    env(MIGRATION_GUARD_CACHE_DIR=str(self.root / "cache-none")),
                    ok=(0, 1),
                )
                self.measure(
                    R_STATIC,
                    self.manage(
                        "migration_audit",
                        *every,
                        str(self.root / "r-static.json"),
                        "--no-trace",
                        *src,
                    ),
                    env(MIGRATION_GUARD_CACHE_DIR=str(self.root / "cache-none")),
                    ok=(0, 1),
                )
                shutil.rmtree(cache, ignore_errors=True)
                for label in (R_CHANGE_COLD, R_CHANGE_WARM):
                    report = self.root / f"r-{label.split()[-1]}.json"
                    self.measure(
                        label,
                        self.manage(
                            "migration_audit",
                            "--unapplied",
                            "--format",
                            "json",
                            "--output",
                            str(report),
                            *src,
                        ),
                        env(DATABASE_URL=cut_url, MIGRATION_GUARD_CACHE_DIR=str(cache)),
                        ok=(0, 1),
                    )
                    audited = json.loads(report.read_text())["summary"]["migrations"]
                    if audited != len(unapplied):
                        raise SystemExit(
                            f"{label}: {audited} migrations audited, not {len(unapplied)}"
                        )
        finally:
            self.real_root = None

    def print_real(self) -> None:
        if not self.samples.get(R_MIGRATE):
            return
        print()
        print(f"Real history ({self.results['real_project']}):")

        def ratio(a: str, b: str) -> list[float]:
            return [
                x.wall / y.wall
                for (x, _), (y, _) in zip(self.samples[a], self.samples[b], strict=True)
            ]

        def spread(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"

        every = ratio(R_ALL, R_MIGRATE)
        static = ratio(R_STATIC, R_MIGRATE)
        warm_over_check = [
            w.wall - c.wall
            for (w, _), (c, _) in zip(
                self.samples[R_CHANGE_WARM], self.samples[R_CHECK], strict=True
            )
        ]
        cold_over = ratio(R_CHANGE_COLD, R_MIGRATE)
        print(f"  cold traced --all / migrate: {spread(every)} (target <= 1.2)")
        print(f"  static --all / migrate:      {spread(static)} (target <= 1.0)")
        print(f"  change of 3 apps, cold / migrate: {spread(cold_over)}")
        print(
            f"  change of 3 apps, warm - manage.py check: {spread(warm_over_check)} s "
            "(target <= 0.7 s)"
        )
        self.results.setdefault("ratios", {})["real"] = {
            "all_over_migrate": [round(r, 3) for r in every],
            "static_over_migrate": [round(r, 3) for r in static],
            "change_cold_over_migrate": [round(r, 3) for r in cold_over],
            "change_warm_minus_check": [round(r, 3) for r in warm_over_check],
        }

    # -- output -------------------------------------------------------------------------
    def print_table(self) -> None:
        print()
        print(f"Project: {self.results['project']}")
        print(f"PostgreSQL: {self.results['postgres']}")
        print(f"CPUs: {os.cpu_count()}; load average after the runs: {self.results['load_after']}")
        rounds = len(self.samples[MIGRATE])
        print(f"Rounds: {rounds} (median and best of each command)")
        print()
        header = (
            f"{'run':42s} {'wall s':>7s} {'best':>7s} {'CPU s':>7s} {'best':>7s} "
            f"{'peak RSS':>9s} {'tree max':>9s}"
        )
        print(header)
        print("-" * len(header))
        rows = []
        for label, samples in self.samples.items():
            walls = [m.wall for m, _ in samples]
            cpus = [m.cpu + server for m, server in samples]
            peaks = [m.peak_rss_mb for m, _ in samples if m.peak_rss_mb is not None]
            peak = max(peaks) if peaks else None
            tree = max(m.tree_max_rss_mb for m, _ in samples)
            peak_text = f"{peak:.0f} MB" if peak is not None else "?"
            print(
                f"{label:42s} {statistics.median(walls):7.2f} {min(walls):7.2f} "
                f"{statistics.median(cpus):7.2f} {min(cpus):7.2f} {peak_text:>9s} "
                f"{tree:6.0f} MB"
            )
            rows.append(
                {
                    "run": label,
                    "wall": [round(w, 3) for w in walls],
                    "cpu": [round(c, 3) for c in cpus],
                    "cpu_server_part": [round(server, 3) for _, server in samples],
                    "peak_rss_mb": round(peak, 1) if peak is not None else None,
                    "tree_max_rss_mb": round(tree, 1),
                    "exit": [m.returncode for m, _ in samples],
                }
            )
        self.results["runs"] = rows
        print()
        print("CPU: user + system of the process and of what it waited for (its own")
        print("PostgreSQL); for migrate and the --database-url audit the shared server's CPU")
        print("during the run is added.")
        print()

        def pairs(a: str, b: str, cpu: bool) -> list[float]:
            return [
                ((x.cpu + xs) / (y.cpu + ys)) if cpu else (x.wall / y.wall)
                for (x, xs), (y, ys) in zip(self.samples[a], self.samples[b], strict=True)
            ]

        ratio_wall = pairs(COLD, MIGRATE, cpu=False)
        ratio_cpu = pairs(COLD, MIGRATE, cpu=True)
        warm = [m.wall for m, _ in self.samples[WARM]]
        cold_peak = max(m.peak_rss_mb or 0 for m, _ in self.samples[COLD])
        warm_peak = max(m.peak_rss_mb or 0 for m, _ in self.samples[WARM])
        migrate_peak = max(m.peak_rss_mb or 0 for m, _ in self.samples[MIGRATE])
        med_wall, med_cpu = statistics.median(ratio_wall), statistics.median(ratio_cpu)
        verdict = "ok" if med_wall <= TARGET_COLD_RATIO else "MISSED"
        print(
            f"cold audit / migrate, same round: {med_wall:.2f} wall, {med_cpu:.2f} CPU "
            f"(median; rounds: {', '.join(f'{r:.2f}' for r in ratio_wall)} wall) "
            f"target <= {TARGET_COLD_RATIO}: {verdict}"
        )
        verdict = "ok" if statistics.median(warm) < TARGET_WARM_WALL else "MISSED"
        print(
            f"warm audit: {statistics.median(warm):.2f} s wall median, {min(warm):.2f} s best "
            f"(target < {TARGET_WARM_WALL:.0f} s: {verdict})"
        )
        print(
            f"peak RSS (Python process): cold audit {cold_peak:.0f} MB, warm audit "
            f"{warm_peak:.0f} MB, migrate {migrate_peak:.0f} MB"
        )
        self.results["ratios"] = {
            "cold_over_migrate_wall": [round(r, 3) for r in ratio_wall],
            "cold_over_migrate_cpu": [round(r, 3) for r in ratio_cpu],
            "warm_wall": [round(w, 3) for w in warm],
        }
        if self.samples.get(CM_COLD):
            cm = pairs(CM_COLD, CM_MIGRATE, cpu=False)
            cm_warm = [m.wall for m, _ in self.samples[CM_WARM]]
            project = self.results["change_mode_project"]
            verdict = "ok" if statistics.median(cm) <= TARGET_COLD_RATIO else "MISSED"
            print(
                f"change mode ({project['change']} migrations of {len(project['apps'])} apps on "
                f"{project['migrations']}): cold audit / migrate {statistics.median(cm):.2f} wall "
                f"(rounds: {', '.join(f'{r:.2f}' for r in cm)}; target <= {TARGET_COLD_RATIO}: "
                f"{verdict}), warm audit {statistics.median(cm_warm):.2f} s wall median"
            )
            self.results["ratios"]["change_mode_cold_over_migrate_wall"] = [round(r, 3) for r in cm]
            self.results["ratios"]["change_mode_warm_wall"] = [round(w, 3) for w in cm_warm]

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
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (default 3).")
    parser.add_argument("--timeout", type=float, default=1800.0, help="Per command, seconds.")
    parser.add_argument("--skip-extras", action="store_true", help="No --no-cache/url audits.")
    parser.add_argument(
        "--skip-change-mode", action="store_true", help="No change-mode case (30 migrations)."
    )
    parser.add_argument(
        "--case",
        choices=["generated", "real", "both"],
        default="both",
        help="The generated 400-migration project, the real third-party history, or both.",
    )
    parser.add_argument("--change-mode-size", type=int, default=30)
    parser.add_argument("--change-mode-apps", type=int, default=5)
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
