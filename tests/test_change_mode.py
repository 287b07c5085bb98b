"""A migration judged inside a change equals the same migration judged alone.

CI audits *the change* (``--unapplied``, or the default ``--since`` the base
branch), a merge request spanning several apps. Each of its migrations must get
exactly the findings, evidence and observed locks, rewrites and scans it gets
when audited alone (``migration_audit APP NAME`` on the same cut), except
findings about relations created earlier in the same change (they have no
readers yet) and the run-level ``lock-timeout-missing`` advice (said once per
run). Checked on the sample project and on two real third-party histories, each
cut at a past point so that the change spans at least three apps and its plan
order interleaves base migrations of one app after change migrations of another.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from psycopg import sql

from .changemode import compared, interleaved, run_cut

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def production(pg_server):
    """An empty database standing for production: only django_migrations is written."""
    name = f"production_{uuid.uuid4().hex[:8]}"
    with pg_server.info.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        settings = pg_server.info.with_dbname(name).django_settings()
        yield settings
    finally:
        with pg_server.info.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _check(data, *, apps_at_least=3):
    apps = {key.split(".", 1)[0] for key in data["audited"]}
    assert len(apps) >= apps_at_least, apps
    assert interleaved(data), "the cut must interleave base and change migrations"
    migrations, findings, problems = compared(data)
    print(
        f"change-mode property: {migrations} migrations of {len(apps)} apps compared, "
        f"{findings} findings, {len(problems)} differences"
    )
    assert not problems, "\n".join(problems)
    assert findings, "the cut must bring findings to compare"
    return migrations, findings


def test_sample_apps_unapplied_equals_alone(tmp_path, pg_url, production):
    change = [
        ("accounts", "0008_hazard_rename_model"),
        ("accounts", "0013_hazard_add_foreign_key_validating"),
        ("shop", "0013_hazard_add_unique_constraint"),
        ("blog", "0006_hazard_alter_field_db_index"),
    ]
    data = run_cut(
        settings="tests.settings",
        change=change,
        production=production,
        scratch_url=pg_url,
        tmp=tmp_path,
    )
    _check(data)


THIRD_PARTY = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("wagtail", "cms", "filer", "allauth")),
    reason="the test extras (wagtail, django-cms, django-filer, django-allauth) are not installed",
)


@pytest.mark.slow
@THIRD_PARTY
def test_wagtail_history_unapplied_equals_alone(tmp_path, pg_url, production):
    change = [
        ("wagtailcore", "0096_referenceindex_referenceindex_source_object_and_more"),
        ("wagtailimages", "0025_alter_image_file_alter_rendition_file"),
        ("wagtaildocs", "0012_uploadeddocument"),
        ("taggit", "0004_alter_taggeditem_content_type_alter_taggeditem_tag"),
        ("wagtailadmin", "0004_editingsession"),
    ]
    data = run_cut(
        settings="tests.thirdparty.settings",
        change=change,
        production=production,
        scratch_url=pg_url,
        tmp=tmp_path,
    )
    _check(data)


@pytest.mark.slow
@THIRD_PARTY
def test_cms_allauth_history_unapplied_equals_alone(tmp_path, pg_url, production):
    change = [
        ("cms", "0043_alter_globalpagepermission_can_view_and_more"),
        ("filer", "0017_image__transparent"),
        ("admin", "0002_logentry_remove_auto_add"),
        ("account", "0007_emailaddress_idx_email"),
        ("socialaccount", "0004_app_provider_id_settings"),
        ("mfa", "0002_authenticator_timestamps"),
    ]
    data = run_cut(
        settings="tests.thirdparty.settings",
        change=change,
        production=production,
        scratch_url=pg_url,
        tmp=tmp_path,
    )
    _check(data)


# --- the default mode: --since the base branch, with git -------------------------------

SETTINGS = """\
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.contenttypes", "migration_guard", "accounts", "reports"]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "nowhere"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [
        {operations}
    ]
"""


def _write_app(root: Path, label: str, migrations: list[tuple[str, list, str]]) -> None:
    pkg = root / label
    (pkg / "migrations").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text("")
    (pkg / "migrations" / "__init__.py").write_text("")
    for name, deps, ops in migrations:
        text = MIGRATION.format(dependencies=deps, operations=ops)
        (pkg / "migrations" / f"{name}.py").write_text(text)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _manage(root: Path, pg_url: str, *args: str) -> dict:
    out = root / f"report-{uuid.uuid4().hex[:6]}.json"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="settings")
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(ROOT / "src")])
    env.pop("MIGRATION_GUARD_DATABASE_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "migration_audit",
            *args,
            "--database-url",
            pg_url,
            "--format",
            "json",
            "--output",
            str(out),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(out.read_text())


def test_since_base_branch_equals_alone(tmp_path, pg_url):
    """The issue's repro: a branch adds a migration in each of two apps, both with a
    hazard on an existing table. The default audit judges each like the audit of it alone."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "settings.py").write_text(SETTINGS)
    account = (
        "migrations.CreateModel('Account', [('id', models.BigAutoField(primary_key=True)), "
        "('email', models.CharField(max_length=200))])"
    )
    hit = (
        "migrations.CreateModel('PageHit', [('id', models.BigAutoField(primary_key=True)), "
        "('path', models.CharField(max_length=200))])"
    )
    _write_app(root, "accounts", [("0001_initial", [], account)])
    _write_app(root, "reports", [("0001_initial", [], hit)])
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _git(root, "checkout", "-q", "-b", "feature")
    _write_app(
        root,
        "accounts",
        [
            (
                "0002_email_index",
                [("accounts", "0001_initial")],
                "migrations.AlterField('account', 'email', "
                "models.CharField(max_length=200, db_index=True))",
            )
        ],
    )
    _write_app(
        root,
        "reports",
        [
            (
                "0002_path_index",
                [("reports", "0001_initial")],
                "migrations.AlterField('pagehit', 'path', "
                "models.CharField(max_length=200, db_index=True))",
            )
        ],
    )
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "feature")

    change = _manage(root, pg_url)
    assert "since main" in change["change"]
    judged = {f"{m['app_label']}.{m['name']}": m for m in change["migrations"]}
    assert set(judged) == {"accounts.0002_email_index", "reports.0002_path_index"}
    for key in judged:
        app, name = key.split(".")
        alone = _manage(root, pg_url, app, name)
        data = {
            "change": change,
            "alone": {key: alone},
            "created_before": {key: []},
        }
        _, _, problems = compared(data)
        assert not problems, textwrap.indent("\n".join(problems), "  ")
        rules = {f["rule"] for f in judged[key]["findings"]}
        assert "add-index-non-concurrent" in rules, (key, rules)
