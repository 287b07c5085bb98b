"""Which migrations are "the change": explicit, --since, default base ref, --all, keys."""

from __future__ import annotations

import subprocess

import pytest

from migration_guard.conf import build_config
from migration_guard.discovery import Selection
from migration_guard.engine import AuditRequest, run_audit
from migration_guard.exceptions import MigrationLoadError, SelectionError

from .harness import Migration

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('n', models.IntegerField(null=True))])"
)
ADD_NOTE = "migrations.AddField('order', 'note', models.TextField(null=True))"
ADD_INDEX = "migrations.AddIndex('order', models.Index(fields=['n'], name='order_n_ix'))"


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


def git_repo(path):
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")


def run(app, selection, **config):
    from django.test.utils import override_settings

    values = {"postgres": "url", "database_url": app.factory.url, **config}
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        cfg = build_config(values, django_settings={}, use_pyproject=False)
        return run_audit(AuditRequest(selection=selection, config=cfg))


def names(report):
    return [m.name for m in report.migrations]


def test_app_and_migration_prefix(make_app):
    app = make_app([ORDER], [ADD_NOTE], [ADD_INDEX])
    report = run(app, Selection(app_label=app.label, migration_name="0002"))
    assert names(report) == [app.names[1]]
    assert report.change == f"{app.label}.{app.names[1]}"


def test_app_alone_judges_each_migration_on_its_own(make_app):
    app = make_app([ORDER], [ADD_INDEX])
    report = run(app, Selection(app_label=app.label))
    assert names(report) == app.names
    # 0002's index is on a table 0001 created: with each migration judged on its own,
    # the table already exists, so the index counts as a hazard.
    assert any(m.name == app.names[1] and m.findings for m in report.migrations)


def test_keys_together_treat_tables_of_the_change_as_new(make_app):
    app = make_app([ORDER], [ADD_INDEX])
    report = app.audit(1, 2)
    assert [f for f in report.findings if f.severity.value == "error"] == []


def test_unknown_app_suggests_close_labels(make_app):
    app = make_app([ORDER])
    with pytest.raises(SelectionError, match=f"Did you mean {app.label}"):
        run(app, Selection(app_label=app.label[:-1] + "x"))


def test_unknown_migration_suggests_close_names(make_app):
    app = make_app([ORDER], [ADD_NOTE])
    with pytest.raises(SelectionError, match="Did you mean"):
        run(app, Selection(app_label=app.label, migration_name="0002_m3"))


def test_ambiguous_prefix_lists_matches(make_app):
    app = make_app([ORDER], [ADD_NOTE])
    with pytest.raises(SelectionError, match="more than one migration"):
        run(app, Selection(app_label=app.label, migration_name="000"))


def test_several_selections_are_refused(make_app):
    app = make_app([ORDER])
    with pytest.raises(SelectionError, match="choose one of"):
        run(app, Selection(app_label=app.label, all=True))


def test_since_takes_changed_and_untracked_migration_files(make_app, monkeypatch):
    app = make_app([ORDER], [ADD_NOTE], [ADD_INDEX])
    root = app.factory.root
    git_repo(root)
    migrations = app.path / "migrations"
    (root / "later").mkdir()
    later = [migrations / f"{n}.py" for n in app.names[1:]]
    for path in later:
        path.rename(root / "later" / path.name)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    for path in later:
        (root / "later" / path.name).rename(path)
    git(root, "add", str(later[0]))  # one staged, one untracked
    monkeypatch.chdir(root)
    report = run(app, Selection(since="HEAD"))
    assert names(report) == app.names[1:]
    assert "since HEAD" in report.change


def test_default_base_is_main_and_the_report_says_so(make_app, monkeypatch):
    app = make_app([ORDER], [ADD_NOTE])
    root = app.factory.root
    git_repo(root)
    second = app.path / "migrations" / f"{app.names[1]}.py"
    kept = second.read_text()
    second.unlink()
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-qb", "feature")
    second.write_text(kept)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "feature")
    monkeypatch.chdir(root)
    report = run(app, Selection())
    assert names(report) == [app.names[1]]
    assert "since main" in report.change
    assert "default base" in report.change


def test_not_a_git_repository_says_what_to_do(make_app, monkeypatch, tmp_path_factory):
    app = make_app([ORDER])
    elsewhere = tmp_path_factory.mktemp("nogit")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(elsewhere.parent))
    with pytest.raises(SelectionError, match="--all"):
        run(app, Selection())


def test_squashed_migration_is_audited(make_app):
    app = make_app(
        [ORDER],
        Migration([ADD_NOTE, ADD_INDEX], attributes="replaces = []", name="0002_squashed"),
    )
    # make it a real squash of two migrations that are not on disk
    path = app.path / "migrations" / "0002_squashed.py"
    path.write_text(
        path.read_text().replace(
            "replaces = []", f"replaces = [('{app.label}', '0002_a'), ('{app.label}', '0003_b')]"
        )
    )
    report = app.audit("0002_squashed")
    assert names(report) == ["0002_squashed"]
    assert report.migrations[0].status == "audited"


def test_merge_migration_is_audited(make_app):
    app = make_app(
        [ORDER],
        Migration([ADD_NOTE], name="0002_left"),
        Migration([ADD_INDEX], name="0002_right"),
    )
    # 0002_right was chained after 0002_left by the harness: make both branch from 0001
    right = app.path / "migrations" / "0002_right.py"
    right.write_text(right.read_text().replace("0002_left", app.names[0]))
    merge = app.path / "migrations" / "0003_merge.py"
    merge.write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [('{app.label}', '0002_left'), ('{app.label}', '0002_right')]\n"
        "    operations = []\n"
    )
    report = app.audit("0002_left", "0002_right", "0003_merge")
    assert sorted(names(report)) == ["0002_left", "0002_right", "0003_merge"]
    assert all(m.status == "audited" for m in report.migrations)


def test_two_leaves_say_how_to_merge(make_app):
    app = make_app([ORDER], Migration([ADD_NOTE], name="0002_left"))
    right = app.path / "migrations" / "0002_right.py"
    right.write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [('{app.label}', '{app.names[0]}')]\n"
        "    operations = []\n"
    )
    with pytest.raises(MigrationLoadError, match="makemigrations --merge"):
        app.audit("0002_left")
