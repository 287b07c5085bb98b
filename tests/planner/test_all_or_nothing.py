"""All or nothing (issue 12, item 4): a plan interrupted at any stage leaves no trace.

The command replaces a migration (so a file is removed), edits models.py (so a
file is changed) and writes new migrations and a plan record; the migration it
replaces carries a ``pg_sleep`` that the plan keeps, so that the round trip
and the audit each take a few seconds. A signal is sent when the command says
(at ``-v 2``) that a stage has begun; the project must then be byte for byte
what it was, the message must say the command was interrupted and that every
file was restored. Also: an error during verification (the server cannot be
reached), and SIGKILL, after which the next run restores the files first.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import django
import pytest

HAZARD = """\
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0019_hazard_update_without_where"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="rating",
            field=models.IntegerField(default=3),
        ),
        migrations.RunSQL("SELECT pg_sleep(4)", migrations.RunSQL.noop),
    ]
"""
RATING = (
    "    view_count = models.IntegerField(default=0)\n",
    "    view_count = models.IntegerField(default=0)\n"
    "    rating = models.IntegerField(default=3)\n",
)
#: Django 5.0+ keeps the DEFAULT through db_default, written into models.py too; Django 4.2
#: writes the RunSQL form and leaves models.py alone.
EDITS_MODELS = django.VERSION >= (5, 0)
#: Stage -> the -v 2 line that says it has begun.
STAGES = {
    "writing": "wrote ",
    "fresh process": "importing the project in a fresh process",
    "round trip": "rows of the previous release, seeded and compared",
    "audit": "verifying: audit of the new migrations",
}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def project(project_factory):
    project = project_factory("allornothing")
    project.edit("blog/models.py", *RATING)
    (project.root / "blog" / "migrations" / "0020_hazard_rating.py").write_text(HAZARD)
    return project


def start(
    project, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    child = subprocess.Popen(
        [sys.executable, "manage.py", "plan_zero_downtime", "blog", "0020", "-v", "2", *extra],
        cwd=project.root,
        env=env or project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return child, lines


def wait_for(lines: queue.Queue[str], text: str, seen: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
        if line == "":
            raise AssertionError(f"the command ended before {text!r}:\n{''.join(seen)}")
    raise AssertionError(f"no {text!r} within {timeout}s:\n{''.join(seen)}")


def finish(child: subprocess.Popen[str], lines: queue.Queue[str], seen: list[str]) -> str:
    child.wait(timeout=120)
    while True:
        line = lines.get(timeout=30)
        if line == "":
            break
        seen.append(line)
    return "".join(seen)


@pytest.mark.parametrize(
    ("stage", "signum"),
    [
        ("writing", signal.SIGINT),
        ("fresh process", signal.SIGTERM),
        ("round trip", signal.SIGINT),
        ("audit", signal.SIGTERM),
    ],
)
def test_a_signal_at_each_stage_restores_every_file(project, stage, signum):
    before = snapshot(project.root)
    child, lines = start(project)
    seen: list[str] = []
    wait_for(lines, STAGES[stage], seen)
    child.send_signal(signum)
    err = finish(child, lines, seen)
    assert child.returncode == 2, err
    assert f"interrupted by signal {int(signum)} while" in err
    assert "Every file the plan touched was restored byte for byte" in err
    assert "blog/migrations/0020_hazard_rating.py (put back)" in err
    assert "Traceback" not in err
    assert snapshot(project.root) == before


def test_an_error_during_verification_restores_every_file(project):
    """The server is gone (here: never there): the error, and the files put back."""
    before = snapshot(project.root)
    env = project.env()
    env["MIGRATION_GUARD_DATABASE_URL"] = "postgresql://nobody@/postgres?host=/nonexistent"
    proc = subprocess.run(
        [sys.executable, "manage.py", "plan_zero_downtime", "blog", "0020"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "starting PostgreSQL for the round trip failed: ProviderError" in proc.stderr
    assert "restored byte for byte" in proc.stderr
    assert ("blog/models.py (put back)" in proc.stderr) is EDITS_MODELS
    assert "Traceback" not in proc.stderr
    assert snapshot(project.root) == before


def test_after_sigkill_the_next_run_restores_first(project):
    before = snapshot(project.root)
    child, lines = start(project)
    seen: list[str] = []
    wait_for(lines, STAGES["round trip"], seen)
    child.kill()
    finish(child, lines, seen)
    assert snapshot(project.root) != before  # the plan's files are in place, unverified
    assert (project.root / "blog/migrations/.zero_downtime_staging").is_dir()
    proc = project.plan("blog", "--dry-run", expect=None)
    if EDITS_MODELS:  # models.py was imported before it was put back: run again
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "was interrupted before it could clean up" in proc.stderr
        assert "blog/models.py (put back)" in proc.stderr
        assert "Run the command again" in proc.stderr
    else:  # only migrations were restored: the run goes on
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "was interrupted before it could clean up" in proc.stdout
    assert "blog/migrations/0020_hazard_rating.py (put back)" in proc.stdout + proc.stderr
    assert snapshot(project.root) == before
