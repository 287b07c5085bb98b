"""Fixtures of the planner tests: copies of sample_apps, run for real in subprocesses.

A test copies the sample project into a temporary folder, edits its models (or
writes a hazard migration with ``makemigrations``), runs ``plan_zero_downtime``
there in a subprocess, compares the generated files with golden files, and then
proves the plan with ``scripts/check_plan.py``: forward and fully backward on a
database holding rows (a copy of a template database migrated and seeded once per
session), previous-release probes, ``makemigrations --check``, and the audit of
the generated migrations together. PostgreSQL is the session's real server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import django
import pytest

from migration_guard.postgres import PostgresServer
from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.scratch import PREFIX, create_database, drop_database, new_name

from ..conftest import audit_role_url

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_apps"
SCRIPTS = Path(__file__).parent / "scripts"
GOLDEN = Path(__file__).parent / "golden"
#: Set to 1 to rewrite the golden files from what the planner writes now.
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
#: golden/<case>/ is what the planner writes on Django 5.2. Where another Django major
#: writes something else (Django 4.2: no db_default, so the RunSQL form; its writer's
#: ``check=`` and unsorted dependencies), golden/<variant>/<case>/ holds that version's
#: files, written by UPDATE_GOLDEN=1 on that version (only where they differ).
GOLDEN_VARIANT = {4: "django42", 6: "django6"}.get(django.VERSION[0])


def django_url(info: ConnectionInfo) -> str:
    """A postgresql:// URL the sample settings understand (Unix socket folders included)."""
    user = quote(info.user)
    password = f":{quote(info.password)}" if info.password else ""
    if info.host.startswith("/"):
        return (
            f"postgresql://{user}{password}@/{info.dbname}?host={quote(info.host)}&port={info.port}"
        )
    return f"postgresql://{user}{password}@{info.host}:{info.port}/{info.dbname}"


class Project:
    """A copy of sample_apps in a temporary folder."""

    def __init__(self, root: Path, server: PostgresServer, template: str) -> None:
        self.root = root
        self.server = server
        self.template = template
        self.databases: list[str] = []
        #: models.py of each app as it was before the last plan (for the planner's diff).
        self.models_before: dict[str, str] = {}
        shutil.copytree(
            SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        )
        self.original = {p.relative_to(root).as_posix() for p in root.rglob("*.py")}

    # -- files ----------------------------------------------------------------------
    def edit(self, relative: str, old: str, new: str, count: int = 1) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, count))

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text()

    def migrations(self, app: str) -> list[str]:
        folder = self.root / app / "migrations"
        return sorted(p.stem for p in folder.glob("[0-9]*.py"))

    def new_migrations(self, app: str, before: list[str]) -> list[str]:
        return [n for n in self.migrations(app) if n not in before]

    # -- commands ---------------------------------------------------------------------
    def env(self, database: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(REPO / "src")])
        env["DJANGO_SETTINGS_MODULE"] = "sample_project.settings"
        # the planner audits on this server as a CREATEDB-only role (a superuser is refused)
        env["MIGRATION_GUARD_DATABASE_URL"] = audit_role_url(self.server)
        env["DATABASE_URL"] = database or django_url(self.server.info.with_dbname("not_a_database"))
        env.pop("UPDATE_GOLDEN", None)
        return env

    def manage(
        self, *args: str, database: str | None = None, expect: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env=self.env(database),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if expect is not None:
            assert proc.returncode == expect, (
                f"manage.py {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def plan(
        self, *args: str, expect: int | None = 0, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return self.manage("plan_zero_downtime", *args, expect=expect, **kw)

    # -- databases ----------------------------------------------------------------------
    def database(self, empty: bool = False) -> str:
        """A new database: a copy of the seeded template (or empty); its Django URL."""
        name = new_name("plantest")
        create_database(self.server, name, template=None if empty else self.template)
        self.databases.append(name)
        return django_url(self.server.info.with_dbname(name))

    def sql(self, database: str, *statements: str) -> None:
        """Run statements on one of this project's databases (given by its URL)."""
        name = next(n for n in self.databases if f"/{n}?" in database or database.endswith(f"/{n}"))
        with self.server.info.with_dbname(name).connect(autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def check(
        self,
        app: str,
        *,
        written: list[str],
        back: str,
        audit: list[str] | None = None,
        database: str | None = None,
        probes: list[str] = (),  # type: ignore[assignment]
        facts: list[str] = (),  # type: ignore[assignment]
        tables: list[str] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Run scripts/check_plan.py in the copy; return its findings."""
        database = database or self.database()
        payload = {
            "app": app,
            "last": written[-1],
            "back": back,
            "audit": audit or written,
            "probes": list(probes),
            "facts": list(facts),
            "tables": list(tables),
            "audit_url": audit_role_url(self.server),
        }
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / "check_plan.py"), json.dumps(payload)],
            cwd=self.root,
            env=self.env(database),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"check_plan failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def migrate_original(self, database: str, app: str, target: str) -> None:
        """Migrate ``database`` with the unmodified sample project (e.g. back to mid-history)."""
        env = self.env(database)
        env["PYTHONPATH"] = os.pathsep.join([str(SAMPLE), str(REPO / "src")])
        proc = subprocess.run(
            [sys.executable, "manage.py", "migrate", app, target, "-v", "0"],
            cwd=SAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def cleanup(self) -> None:
        for name in self.databases:
            drop_database(self.server, name)


def assert_proven(result: dict[str, Any]) -> None:
    """Forward and backward with rows, probes, makemigrations --check, audit without error."""
    for step in ("forward", "backward", "again", "makemigrations"):
        assert result[step] == "ok", f"{step}: {result[step]}"
    for index, probe in enumerate(result["probes"]):
        assert probe == "ok", f"probe {index}: {probe}"
    errors = [f for f in result["audit"] if f["severity"] == "error"]
    assert not errors, f"audit errors: {errors}"
    compared = 0
    for table, count in result.get("rows_before", {}).items():
        after = result["rows_after"].get(table)
        if count is None or after is None:
            continue  # created or dropped by the plan
        assert count > 0, f"{table} has no rows: the proof needs rows"
        assert after >= count, f"{table}: {count} rows before, {after} after"  # probes add rows
        compared += 1
    if result.get("rows_before"):
        assert compared, "no table with rows both before and after the plan"


def golden_folder(case: str) -> Path:
    """This Django major's golden files of ``case``: its variant's, else the shared ones."""
    if GOLDEN_VARIANT is not None and (GOLDEN / GOLDEN_VARIANT / case).is_dir():
        return GOLDEN / GOLDEN_VARIANT / case
    return GOLDEN / case


def _same_files(folder: Path, files: dict[str, str]) -> bool:
    if sorted(p.name for p in folder.glob("*")) != sorted(files):
        return False
    return all((folder / name).read_text() == text for name, text in files.items())


def assert_golden(case: str, files: dict[str, str]) -> None:
    """The generated files equal this Django's golden files of ``case`` (see GOLDEN_VARIANT).

    UPDATE_GOLDEN=1 rewrites them: the shared folder on Django 5.x, the variant's folder
    elsewhere, which is removed again when the output equals the shared files.
    """
    if UPDATE:
        folder = GOLDEN / case if GOLDEN_VARIANT is None else GOLDEN / GOLDEN_VARIANT / case
        if folder.exists():
            shutil.rmtree(folder)
        if GOLDEN_VARIANT is not None and _same_files(GOLDEN / case, files):
            if folder.parent.is_dir() and not any(folder.parent.iterdir()):
                folder.parent.rmdir()
            return
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        return
    folder = golden_folder(case)
    expected = sorted(p.name for p in folder.glob("*")) if folder.exists() else []
    assert sorted(files) == expected, f"golden files of {case}: {sorted(files)} != {expected}"
    for name, text in files.items():
        golden = (folder / name).read_text()
        assert text == golden, (
            f"{folder.relative_to(GOLDEN)}/{name} differs from the golden file (UPDATE_GOLDEN=1)"
        )


@pytest.fixture(scope="session")
def sample_template(pg_server: PostgresServer) -> Iterator[str]:
    """A database with sample_apps fully migrated and rows in every table."""
    name = new_name("plantmpl")
    assert name.startswith(PREFIX)
    create_database(pg_server, name)
    url = django_url(pg_server.info.with_dbname(name))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SAMPLE), str(REPO / "src")])
    env["DJANGO_SETTINGS_MODULE"] = "sample_project.settings"
    env["DATABASE_URL"] = url
    try:
        for args in (["manage.py", "migrate", "-v", "0"], [str(SCRIPTS / "seed.py")]):
            proc = subprocess.run(
                [sys.executable, *args],
                cwd=SAMPLE,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
        yield name
    finally:
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def project_factory(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer, sample_template: str
) -> Iterator[Any]:
    made: list[Project] = []

    def make(label: str = "project") -> Project:
        project = Project(tmp_path_factory.mktemp(label) / "sample", pg_server, sample_template)
        made.append(project)
        return project

    try:
        yield make
    finally:
        for project in made:
            project.cleanup()
