"""The planner on every plannable finding of real histories: planned and verified, or refused.

Not a test (it takes an hour or more on the third-party project): a run that
prints counts. For each project, ``migration_audit --all`` finds the findings
whose rule has a strategy (``rule_strategies()``); for each migration holding
one, a throwaway copy of the project is made (for third-party apps, their
packages are copied into it so that their migration files can be replaced),
and ``plan_zero_downtime APP MIGRATION`` runs there, verification included.
Each run ends as one of:

* ``verified``: a plan was written and verified;
* ``refused``: exit 2, or nothing to plan, with the reason the planner gave;
* ``verification-failed``: a plan was written, failed verification and was
  restored (the reason is printed);
* ``crashed``: a traceback, or an exit status the command never gives.

    python tests/planner/scripts/corpus.py --database-url "$URL"            # both projects
    python tests/planner/scripts/corpus.py --database-url "$URL" --project sample
    python tests/planner/scripts/corpus.py --database-url "$URL" --jobs 2 --out corpus.json

The server at ``--database-url`` needs CREATEDB; every plan verifies in scratch
databases there.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "sample_apps"
#: Third-party packages whose apps the corpus plans (their folders are copied).
THIRD_PARTY = (
    "wagtail",
    "cms",
    "menus",
    "filer",
    "easy_thumbnails",
    "allauth",
    "taggit",
    "modelcluster",
    "treebeard",
)
CRASH = re.compile(r"Traceback \(most recent call last\)", re.M)


@dataclasses.dataclass
class Target:
    project: str
    app: str
    migration: str
    rules: list[str]
    package: str | None = None


@dataclasses.dataclass
class Outcome:
    target: Target
    status: str
    reason: str
    seconds: float
    strategies: str = ""


def _env(project: str, root: Path, url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MIGRATION_GUARD_DATABASE_URL"] = url
    env["DATABASE_URL"] = "postgresql://nobody@/not_a_database?host=/nonexistent"
    if project == "sample":
        env["DJANGO_SETTINGS_MODULE"] = "sample_project.settings"
        env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO / "src")])
    else:
        env["DJANGO_SETTINGS_MODULE"] = "tests.thirdparty.settings"
        env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO), str(REPO / "src")])
    return env


def _findings(project: str, url: str) -> list[Target]:
    from migration_guard.planner import rule_strategies

    plannable = set(rule_strategies())
    root = SAMPLE if project == "sample" else REPO
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = ["--all", "--database-url", url, "--format", "json", "--output", str(report)]
        if project != "sample":
            args.append("--include-third-party")
        proc = subprocess.run(
            [sys.executable, "-m", "django", "migration_audit", *args],
            cwd=root,
            env=_env(project, root, url),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if not report.exists():
            raise SystemExit(f"the audit of {project} failed:\n{proc.stderr[-3000:]}")
        data = json.loads(report.read_text())
    packages = _packages() if project != "sample" else {}
    targets: dict[tuple[str, str], Target] = {}
    for migration in data["migrations"]:
        rules = sorted({f["rule"] for f in migration["findings"] if f["rule"] in plannable})
        if not rules:
            continue
        app = migration["app_label"]
        package = packages.get(app)
        if project != "sample" and package is None:
            continue  # django.contrib: not a third-party history
        targets[(app, migration["name"])] = Target(project, app, migration["name"], rules, package)
    return list(targets.values())


def _packages() -> dict[str, str]:
    """App label -> the top-level package of its migrations (third-party ones only)."""
    code = (
        "import json, django\ndjango.setup()\nfrom django.apps import apps\n"
        "print(json.dumps({a.label: a.name.split('.')[0] for a in apps.get_app_configs()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=_env("thirdparty", REPO, ""),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    labels = json.loads(out.strip().splitlines()[-1])
    return {label: package for label, package in labels.items() if package in THIRD_PARTY}


def _project_copy(target: Target, tmp: Path) -> Path:
    root = tmp / "project"
    if target.project == "sample":
        shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return root
    root.mkdir()
    assert target.package is not None
    spec = importlib.util.find_spec(target.package)
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(
        source,
        root / target.package,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static", "locale", "templates"),
    )
    return root


def _classify(proc: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    out, err = proc.stdout, proc.stderr
    if CRASH.search(err) or CRASH.search(out) or proc.returncode not in (0, 1, 2):
        return "crashed", (err.strip().splitlines() or ["exit " + str(proc.returncode)])[-1]
    if proc.returncode == 2:
        start = err.find("CommandError: ")  # after any system-check warnings
        return "refused", err[
            start + len("CommandError: ") :
        ].strip() if start >= 0 else err.strip()
    if "Verification FAILED" in out:
        start = out.index("Verification FAILED")
        return "verification-failed", out[start:].strip()
    if "Verified on" in out:
        notes = [line[6:] for line in out.splitlines() if line.startswith("note: ")]
        return "verified", "; ".join(notes)
    if proc.returncode == 0:
        return "refused", out.strip()
    return "crashed", f"exit {proc.returncode}: {out.strip()[-500:]}"


def plan(target: Target, url: str) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = _project_copy(target, Path(tmp))
        cwd = root if target.project == "sample" else REPO
        proc = subprocess.run(
            [sys.executable, "-m", "django", "plan_zero_downtime", target.app, target.migration],
            cwd=cwd,
            env=_env(target.project, root, url),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    status, reason = _classify(proc)
    lines = proc.stdout.splitlines()
    strategies = next((x.split(":", 1)[1].strip() for x in lines if "strategies:" in x), "")
    return Outcome(target, status, reason, time.monotonic() - started, strategies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--project", choices=["sample", "thirdparty", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--only",
        action="append",
        metavar="APP.MIGRATION",
        help="a prefix of the migrations to run (repeatable; default: all)",
    )
    parser.add_argument("--out", help="write every outcome to this JSON file")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    projects = ["sample", "thirdparty"] if args.project == "both" else [args.project]
    outcomes: list[Outcome] = []
    for project in projects:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        targets = _findings(project, args.database_url)
        if args.only:
            targets = [t for t in targets if f"{t.app}.{t.migration}".startswith(tuple(args.only))]
        print(f"{project}: {len(targets)} migrations with plannable findings", flush=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(plan, target, args.database_url) for target in targets]
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                t = outcome.target
                reason = outcome.reason.replace("\n", " | ")
                print(
                    f"  {outcome.status:20} {t.app}.{t.migration} [{', '.join(t.rules)}] "
                    f"{outcome.seconds:.0f}s {outcome.strategies} :: {reason[:400]}",
                    flush=True,
                )
    print()
    print(
        "| project | migrations | planned and verified | refused with a reason | "
        "verification failed (restored) | crashed |"
    )
    print("|---|---|---|---|---|---|")
    for project in projects:
        counts = collections.Counter(o.status for o in outcomes if o.target.project == project)
        total = sum(counts.values())
        print(
            f"| {project} | {total} | {counts['verified']} | {counts['refused']} | "
            f"{counts['verification-failed']} | {counts['crashed']} |"
        )
    findings = collections.Counter(
        (o.target.project, o.status) for o in outcomes for _ in o.target.rules
    )
    print()
    print("findings (a migration's plannable rules) by outcome:", dict(findings))
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                [
                    {
                        "project": o.target.project,
                        "app": o.target.app,
                        "migration": o.target.migration,
                        "rules": o.target.rules,
                        "status": o.status,
                        "reason": o.reason,
                        "strategies": o.strategies,
                        "seconds": round(o.seconds, 1),
                    }
                    for o in outcomes
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
