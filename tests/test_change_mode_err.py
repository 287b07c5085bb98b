"""Change mode on the shapes real projects have: each mechanism that once made the
audit blind, noisy or crash, reproduced on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Migration

ROOT = Path(__file__).resolve().parents[1]

TAG = (
    "migrations.CreateModel('Tag', [('id', models.BigAutoField(primary_key=True)), "
    "('name', models.CharField(max_length=50))])"
)
POST = (
    "migrations.CreateModel('Post', [('id', models.BigAutoField(primary_key=True)), "
    "('title', models.CharField(max_length=50)), "
    "('tag', models.ForeignKey('tag', null=True, on_delete=models.CASCADE))])"
)
ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(default=0)), ('note', models.TextField(null=True))])"
)


def _rules(result):
    return sorted(f.rule for f in result.findings)


# --- 1, 2: the base first, and each migration against the state right before it ----


def test_rewrite_is_reported_once_by_the_migration_that_did_it_err(make_app):
    """int -> bigint rewrites the table; the RemoveField after it rewrites nothing."""
    app = make_app(
        [ORDER],
        ["migrations.AlterField('order', 'qty', models.BigIntegerField(default=0))"],
        ["migrations.RemoveField('order', 'note')"],
    )
    report = app.audit(2, 3)
    first, second = report.migrations
    assert "alter-column-type-rewrite" in _rules(first)
    assert any(f"{app.label}_order" in t.rewritten for t in first.trace)
    assert not any(t.rewrites for t in second.trace), second.trace
    assert "observed-table-work-under-lock" not in _rules(second)
    assert _rules(second) == ["remove-field"]


def test_base_migrations_of_other_apps_run_before_the_change_err(make_app):
    """A change in two apps: the second app's old table is an old table, whatever the
    plan order (the issue's accounts/reports repro, in one audit)."""
    first = make_app(
        [ORDER], ["migrations.AddIndex('order', models.Index(fields=['qty'], name='q_idx'))"]
    )
    other = make_app(
        [TAG],
        ["migrations.AddIndex('tag', models.Index(fields=['name'], name='n_idx'))"],
    )
    from django.test.utils import override_settings

    from migration_guard.conf import build_config
    from migration_guard.discovery import Selection
    from migration_guard.engine import AuditRequest, run_audit

    keys = ((first.label, first.names[1]), (other.label, other.names[1]))
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", first.label, other.label],
        MIGRATION_GUARD={},
    ):
        config = build_config(
            {"postgres": "url", "database_url": first.factory.url},
            django_settings={},
            use_pyproject=False,
        )
        report = run_audit(AuditRequest(selection=Selection(keys=keys), config=config))
    for result in report.migrations:
        assert "add-index-non-concurrent" in _rules(result), result


# --- 5: locks on the other table of a foreign key -----------------------------------------


def test_foreign_key_drop_names_the_referenced_table_err(make_app):
    """DROP CONSTRAINT of a foreign key takes ACCESS EXCLUSIVE on the referenced table."""
    app = make_app(
        [TAG, POST],
        [
            "migrations.AlterField('post', 'tag', models.ForeignKey('tag', null=True, "
            "on_delete=models.CASCADE, db_constraint=False))"
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, "lock-timeout-missing")
    tag, post = f"{app.label}_tag", f"{app.label}_post"
    assert {(lk.relation, lk.mode) for lk in finding.locks} == {
        (post, "AccessExclusiveLock"),
        (tag, "AccessExclusiveLock"),
    }
    assert tag in finding.message
    assert finding.evidence.value == "observed"


REPOINT = """
LABEL = __name__.split('.')[0]
SQL = (
    f'ALTER TABLE "{LABEL}_post" DROP CONSTRAINT IF EXISTS "{LABEL}_post_tag_fk"; '
    f'ALTER TABLE "{LABEL}_post" ADD CONSTRAINT "{LABEL}_post_tag_fk" FOREIGN KEY ("tag_id") '
    f'REFERENCES "{LABEL}_tag" ("id")'
)
UNLOGGED = f'ALTER TABLE "{LABEL}_order" SET UNLOGGED'
"""


@pytest.mark.parametrize("split", [True, False])
def test_foreign_key_repointed_says_reads_of_the_referenced_table_wait_err(make_app, split):
    """Adding the constraint predicts SHARE ROW EXCLUSIVE on the referenced table ("reads
    continue"), but dropping the old one took ACCESS EXCLUSIVE there first: say so.
    RunSQL of a list runs each statement on its own (observed one by one); of a string,
    in one execute (observed together)."""
    named = Migration(
        [
            TAG,
            POST.replace(
                "on_delete=models.CASCADE", "on_delete=models.CASCADE, db_constraint=False"
            ),
            "migrations.RunSQL(SQL.split('; ', 1)[1], migrations.RunSQL.noop)",
        ],
        extra=REPOINT,
    )
    sql = "SQL.split('; ')" if split else "SQL"
    app = make_app(
        named, Migration([f"migrations.RunSQL({sql}, migrations.RunSQL.noop)"], extra=REPOINT)
    )
    report = app.audit()
    (finding,) = app.findings(report, "add-foreign-key-validating")
    tag = f"{app.label}_tag"
    assert "reads continue" in finding.message  # the rule's words, about the ADD alone
    if split:
        (lock,) = [lk for lk in finding.locks if lk.relation == tag]
        assert lock.mode == "ShareRowExclusiveLock"
        (note,) = [n for n in finding.notes if f"{tag} was already under ACCESS EXCLUSIVE" in n]
        assert "operations[0] RunSQL's ALTER TABLE DROP CONSTRAINT" in note
    else:
        (note,) = [
            n for n in finding.notes if f"ACCESS EXCLUSIVE (blocks reads and writes) on {tag}" in n
        ]
    assert f"reads and writes of {tag} wait" in note


def test_work_under_lock_names_every_table_held_meanwhile_err(make_app):
    """Like a squashed migration: ACCESS EXCLUSIVE on other tables stays held while a
    table is rewritten. The finding names them, and who took the lock."""
    app = make_app(
        [TAG, POST, ORDER],
        Migration(
            [
                "migrations.AlterField('post', 'tag', models.ForeignKey('tag', null=True, "
                "on_delete=models.CASCADE, db_constraint=False))",
                "migrations.RunSQL(UNLOGGED, migrations.RunSQL.noop)",
            ],
            extra=REPOINT,
        ),
    )
    report = app.audit()
    (finding,) = app.findings(report, "observed-table-work-under-lock")
    order, tag, post = (f"{app.label}_{t}" for t in ("order", "tag", "post"))
    assert finding.table == order
    assert order in finding.rewritten
    assert {lk.relation for lk in finding.held} == {tag, post}
    assert all(lk.taken_by and "operations[0] AlterField" in lk.taken_by for lk in finding.held)
    assert tag in finding.message and post in finding.message


# --- 6: deferred SQL is judged where it runs ---------------------------------------------

FILL = """
def fill(apps, schema_editor):
    label = __name__.split('.')[0]
    Tag = apps.get_model(label, 'Tag')
    Post = apps.get_model(label, 'Post')
    tags = [Tag.objects.create(name=f't{i}') for i in range(30)]
    for i in range(100):
        Post.objects.create(title=f'p{i}').labels.set(tags[:3])
"""


def test_deferred_foreign_key_check_after_a_data_step_err(make_app):
    """A new many-to-many table is filled by a data step; the foreign-key check Django
    deferred to the end of the migration then scans the old referenced table under the
    ACCESS EXCLUSIVE an earlier operation took. Not free: "a new table" it is not."""
    app = make_app(
        [TAG, POST],
        Migration(
            [
                "migrations.AddField('post', 'views', models.IntegerField(null=True))",
                "migrations.AddField('post', 'labels', models.ManyToManyField(to='tag', "
                "related_name='+'))",
                "migrations.RunPython(fill, migrations.RunPython.noop)",
            ],
            extra=FILL,
        ),
    )
    report = app.audit()
    (result,) = report.migrations
    post = f"{app.label}_post"
    work = app.findings(report, "observed-table-work-under-lock")
    assert work, _rules(result)
    deferred = [f for f in work if "deferred to the end of the migration" in f.message]
    assert deferred, [f.message for f in work]
    assert any(f.table == post and f.locks[0].mode == "AccessExclusiveLock" for f in deferred)
    assert all(f.operation.index == 1 for f in deferred)  # the operation that queued it
    phases = [(t.index, t.phase) for t in result.trace]
    assert (1, "deferred") in phases and phases.index((1, "deferred")) > phases.index(
        (2, "operation")
    )


# --- 7: a table dropped and created again is a new table --------------------------------


@pytest.mark.parametrize("trace", [False, True])
def test_table_dropped_and_created_again_is_new_err(make_app, trace):
    recreate = TAG.replace("max_length=50", "max_length=60")
    app = make_app(
        [TAG],
        [
            "migrations.DeleteModel('Tag')",
            recreate,
            "migrations.AddIndex('tag', models.Index(fields=['name'], name='tag_name_idx'))",
            "migrations.AlterField('tag', 'name', models.CharField(max_length=60, unique=True))",
        ],
    )
    report = app.audit(trace=trace)
    # dropping the old table breaks the previous release; nothing about the new, empty one
    assert app.rules(report) == ["remove-model"]
    (finding,) = app.findings(report, "remove-model")
    assert finding.operation.index == 0


# --- 3: two databases ------------------------------------------------------------------------


def _sample(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    full.pop("MIGRATION_GUARD_DATABASE_URL", None)
    full.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT / "sample_apps",
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_second_database_audited_through_its_alias(pg_url):
    """sample_apps routes its analytics app to the 'analytics' database."""
    done = _sample(
        "migration_audit",
        "analytics",
        "--database",
        "analytics",
        "--database-url",
        pg_url,
        "--format",
        "json",
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    rules = {f["rule"] for m in report["migrations"] for f in m["findings"]}
    assert "add-index-non-concurrent" in rules
    # through the default alias the routers skip every operation of analytics, and say where
    done = _sample("migration_audit", "analytics", "--database-url", pg_url, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert not [f for m in report["migrations"] for f in m["findings"]]
    assert any("--database analytics" in note for note in report["notes"])


def test_unknown_alias_is_a_usage_error(pg_url):
    done = _sample("migration_audit", "--all", "--database", "reporting", "--database-url", pg_url)
    assert done.returncode == 2
    assert "'reporting' is not in settings.DATABASES" in done.stderr
    assert "Traceback" not in done.stderr


# --- 4: migration output never reaches the report stream ------------------------------

PRINTING = """
import os, sys

TEXT = {text!r}


def noisy(apps, schema_editor):
    print(TEXT)
    print("to stderr:", TEXT, file=sys.stderr)
    os.system("echo from a subprocess")
"""


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(min_size=0, max_size=60))
def test_machine_output_parses_whatever_migrations_print(make_app, capfd, text):
    app = make_app(
        [ORDER],
        Migration(
            ["migrations.RunPython(noisy, migrations.RunPython.noop)"],
            extra=PRINTING.format(text=text),
        ),
    )
    from django.test.utils import override_settings

    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        capfd.readouterr()
        for fmt in ("json", "sarif", "gitlab"):
            call_command(
                "migration_audit",
                app.label,
                app.names[-1],
                "--database-url",
                app.factory.url,
                "--format",
                fmt,
                "--no-github-annotations",
            )
            out = capfd.readouterr().out
            data = json.loads(out)  # parses, whatever the migration printed
            if fmt == "json":
                (result,) = data["migrations"]
                assert "from a subprocess" in result["output"]
                assert result["output"].count(text) >= 2 if text.strip() else True


def test_output_is_shown_under_its_migration_at_verbosity_2(make_app, capfd):
    app = make_app(
        [ORDER],
        Migration(
            ["migrations.RunPython(noisy, migrations.RunPython.noop)"],
            extra=PRINTING.format(text="Backfilling 12 rows..."),
        ),
    )
    from django.test.utils import override_settings

    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        capfd.readouterr()
        call_command(
            "migration_audit",
            app.label,
            app.names[-1],
            "--database-url",
            app.factory.url,
            "-v",
            "2",
        )
        out = capfd.readouterr().out
    lines = out.splitlines()
    start = lines.index(f"{app.label}.{app.names[-1]}: no findings")
    block = "\n".join(lines[start:])
    assert "output" in block and "| Backfilling 12 rows..." in block
    assert "| from a subprocess" in block
    # nothing printed outside the report's own lines
    assert not any(line.startswith("Backfilling") for line in lines)


# --- 8: crashes are not findings --------------------------------------------------------


def test_internal_error_exits_3_and_says_where_to_report(make_app, monkeypatch):
    app = make_app([ORDER])
    from migration_guard import engine

    def broken(*args, **kwargs):
        raise TypeError("isinstance() arg 2 must be a type")

    monkeypatch.setattr(engine, "run_audit", broken)
    with pytest.raises(CommandError) as caught:
        call_command("migration_audit", "--all", "--database-url", app.factory.url)
    assert caught.value.returncode == 3
    assert "internal error in django-migration-guard" in str(caught.value)
    assert "report it at" in str(caught.value) and "-v 2" in str(caught.value)


def test_project_problem_exits_2(tmp_path, pg_url):
    (tmp_path / "settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['django.contrib.contenttypes', 'migration_guard']\n"
        "DATABASES = {'analytics': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'a'}}\n"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="settings")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT / "src")])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "migration_audit",
            "--all",
            "--include-third-party",
            "--database-url",
            pg_url,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "default" in done.stderr and "Traceback" not in done.stderr


# --- 9: one setting, said once ----------------------------------------------------------


def test_lock_timeout_missing_said_once_per_run_err(make_app):
    app = make_app(
        [ORDER, TAG],
        ["migrations.AddField('order', 'a', models.TextField(null=True))"],
        ["migrations.AddField('tag', 'b', models.TextField(null=True))"],
        ["migrations.AddField('order', 'c', models.TextField(null=True))"],
    )
    report = app.audit(2, 3, 4)
    found = app.findings(report, "lock-timeout-missing")
    assert len(found) == 1, [(f.migration, f.rule) for f in found]
    (finding,) = found
    assert finding.migration == app.names[1]
    assert app.names[2] in finding.message and app.names[3] in finding.message
    assert "2 other migrations" in finding.message
    configured = app.audit(2, 3, 4, lock_timeout="2s")
    assert app.findings(configured, "lock-timeout-missing") == []


# --- 10: the embedded extra brings a driver that works without libpq -------------------


def test_embedded_extra_brings_the_binary_driver():
    wanted = [r for r in requires("django-migration-guard") or [] if "extra == 'embedded'" in r]
    assert any(r.startswith("psycopg[binary]") for r in wanted), wanted


def test_audit_runs_where_libpq_cannot_be_found(pg_url):
    """The binary driver carries its own libpq: hide the system's and audit."""
    code = (
        "import ctypes.util; ctypes.util.find_library = lambda name: None\n"
        "import sys; from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="sample_project.settings")
    env.pop("PSYCOPG_IMPL", None)
    env.pop("MIGRATION_GUARD_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code, "migration_audit", "shop", "0002", "--database-url", pg_url],
        cwd=ROOT / "sample_apps",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "add-index-non-concurrent" in done.stdout


# --- 11: wording that does not contradict itself ----------------------------------------


def test_index_under_a_stronger_lock_says_who_took_it_err(make_app):
    app = make_app(
        [TAG],
        ["migrations.AlterField('tag', 'name', models.CharField(max_length=50, unique=True))"],
    )
    report = app.audit()
    index = [f for f in app.findings(report, "add-index-non-concurrent") if "_like" in f.message]
    (finding,) = index
    assert [(lk.mode, lk.taken_by) for lk in finding.locks] == [("ShareLock", None)]
    (note,) = [n for n in finding.notes if "already under ACCESS EXCLUSIVE" in n]
    assert "ADD CONSTRAINT UNIQUE" in note


def test_row_exclusive_is_not_worded_as_blocking_nothing():
    from migration_guard.findings import Blocks, Category, Evidence, Finding, Lock, Severity
    from migration_guard.report.text import _locks

    finding = Finding(
        rule="update-without-where",
        severity=Severity.ERROR,
        category=Category.DATA,
        message="m",
        fix="f",
        app_label="a",
        migration="0001",
        locks=(Lock("blog_post", "RowExclusiveLock", Blocks.NOTHING),),
        evidence=Evidence.OBSERVED,
    )
    text = _locks(finding)
    assert "blocks nothing" not in text
    assert "writes to the rows it changes wait" in text


def test_base_migration_depending_on_the_change_joins_it(make_app):
    """A migration outside the selection that the change needs but that depends on one
    of its migrations cannot be applied before the change: it is audited with it, and
    the report says why."""
    first = make_app([ORDER], ["migrations.AddField('order', 'a', models.TextField(null=True))"])
    second = make_app(
        Migration([TAG], dependencies=[(first.label, first.names[1])]),
        ["migrations.AddIndex('tag', models.Index(fields=['name'], name='joined_idx'))"],
    )
    from django.test.utils import override_settings

    from migration_guard.conf import build_config
    from migration_guard.discovery import Selection
    from migration_guard.engine import AuditRequest, run_audit

    with override_settings(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "migration_guard",
            first.label,
            second.label,
        ],
        MIGRATION_GUARD={},
    ):
        config = build_config(
            {"postgres": "url", "database_url": first.factory.url},
            django_settings={},
            use_pyproject=False,
        )
        keys = ((first.label, first.names[1]), (second.label, second.names[1]))
        report = run_audit(AuditRequest(selection=Selection(keys=keys), config=config))
    audited = [(m.app_label, m.name) for m in report.migrations]
    assert audited == [
        (first.label, first.names[1]),
        (second.label, second.names[0]),
        (second.label, second.names[1]),
    ]
    (note,) = [n for n in report.notes if "outside the selection" in n]
    assert note.startswith("1 migration(s) outside the selection are audited with the change")
    assert f"{second.label}.{second.names[0]} (on {first.label}.{first.names[1]})" in note
    # the table the joined migration creates is new in the change: no finding about it
    assert app_rules(report, second.label, second.names[1]) == []


def app_rules(report, label, name):
    (result,) = [m for m in report.migrations if (m.app_label, m.name) == (label, name)]
    return [f.rule for f in result.findings if f.rule != "lock-timeout-missing"]
