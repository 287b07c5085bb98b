"""New NOT NULL fields (constant or computed value) and fields made NOT NULL.

Each scenario runs ``plan_zero_downtime`` in a copy of sample_apps and proves the
result (see conftest): golden files, forward and backward on tables with rows,
the previous release's INSERTs after the forward migration, ``makemigrations
--check``, and an audit of the generated migrations without error.
"""

from __future__ import annotations

import django
import pytest

from .conftest import assert_golden, assert_proven
from .helpers import Scenario, collect_files, old_post_insert, plan

LAST_BLOG = "0019_hazard_update_without_where"

NULLABLE = (
    "SELECT is_nullable FROM information_schema.columns "
    "WHERE table_name = 'blog_post' AND column_name = '{}'"
)


def edit_models(project):
    """Three new columns and a field made NOT NULL, on the busy blog_post table."""
    project.edit(
        "blog/models.py",
        "from django.conf import settings\n",
        "import uuid\n\nfrom django.conf import settings\n",
    )
    project.edit(
        "blog/models.py",
        "    comment_count = models.IntegerField(null=True, blank=True, editable=False)\n"
        "    view_count = models.IntegerField(default=0)\n",
        "    comment_count = models.IntegerField(default=0, editable=False)\n"
        "    view_count = models.IntegerField(default=0)\n"
        '    rating = models.IntegerField("rating", default=3)\n'
        "    public_id = models.UUIDField(default=uuid.uuid4)\n",
    )


@pytest.fixture(scope="module")
def two_releases(project_factory):
    """Autodetector input: constant default, computed value, field made NOT NULL."""
    project = project_factory("notnull")
    edit_models(project)
    written, output = plan(project, "blog", "--no-verify")
    first = Scenario(project, "blog", written, output, collect_files(project, "blog", written))
    first.proof = project.check(
        "blog",
        written=written,
        back=LAST_BLOG,
        probes=[old_post_insert(1)],
        facts=[
            "SELECT rating, public_id IS NULL, comment_count IS NULL FROM blog_post "
            "WHERE slug = 'old-release-1'",
            "SELECT count(*) FROM blog_post WHERE public_id IS NULL OR comment_count IS NULL",
        ],
        tables=["blog_post"],
    )
    # Release 1 is deployed: the same command writes release 2.
    written2, output2 = plan(project, "blog", "--no-verify")
    second = Scenario(project, "blog", written2, output2, collect_files(project, "blog", written2))
    second.proof = project.check(
        "blog",
        written=written2,
        back=written[-1],
        facts=[
            "SELECT count(*) FROM blog_post WHERE public_id IS NULL OR comment_count IS NULL",
            "SELECT count(DISTINCT public_id) = count(*) FROM blog_post",
            NULLABLE.format("public_id"),
            NULLABLE.format("comment_count"),
        ],
        tables=["blog_post"],
    )
    third, output3 = plan(project, "blog", "--no-verify")
    return first, second, third, output3


def test_release_1_files(two_releases):
    first, *_ = two_releases
    assert_golden("not_null_release_1", first.files)
    assert first.written == [
        "0020_add_post_public_id_and_more",
        "0021_backfill_post_public_id_and_fill_post_comment_count",
    ]
    # constant default: kept in the database, as db_default in the model on Django 5.0+,
    # with SeparateDatabaseAndState + RunSQL on Django 4.2 (which has no db_default)
    if django.VERSION >= (5, 0):
        assert "db_default=3" in first.files["models.diff"]
    else:
        assert "models.diff" not in first.files
        assert '"rating" integer DEFAULT 3 NOT NULL' in first.files[f"{first.written[0]}.py"]
    assert "Release 2: pending" in first.output


def test_release_1_is_proven(two_releases):
    first, *_ = two_releases
    assert_proven(first.proof)
    new_row, missing = first.proof["facts"]
    # the previous release's INSERT: the database default for rating, NULL for the rest
    assert new_row == [[3, True, True]]
    # existing rows were filled; only the previous release's new row is missing values
    assert missing == [[1]]


def test_release_2(two_releases):
    _, second, *_ = two_releases
    assert_golden("not_null_release_2", second.files)
    assert second.written == [
        "0022_backfill_post_public_id_and_fill_post_comment_count",
        "0023_post_public_id_not_null_not_valid_and_more",
        "0024_post_public_id_validate_not_null",
        "0025_post_comment_count_validate_not_null",
    ]
    assert_proven(second.proof)
    missing, distinct, public_id, comment_count = second.proof["facts"]
    assert missing == [[0]]
    assert distinct == [[True]]  # one value per row, not one for the whole table
    assert public_id == comment_count == [["NO"]]


def test_nothing_left(two_releases):
    *_, third, output = two_releases
    assert third == []
    assert "No changes detected" in output


@pytest.fixture(scope="module")
def django42_form(project_factory):
    project = project_factory("notnull42")
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        '    rating = models.IntegerField("rating", default=3)\n',
    )
    written, output = plan(project, "blog", "--no-verify", "--no-db-default")
    scenario = Scenario(project, "blog", written, output, collect_files(project, "blog", written))
    scenario.proof = project.check(
        "blog", written=written, back=LAST_BLOG, probes=[old_post_insert(1)], tables=["blog_post"]
    )
    return scenario


def test_constant_default_django42_form(django42_form):
    files = django42_form.files
    assert django42_form.written == ["0020_add_post_rating"]
    assert_golden("not_null_default_run_sql", files)
    assert "models.diff" not in files  # the models need no edit
    assert "SeparateDatabaseAndState" in files["0020_add_post_rating.py"]
    assert_proven(django42_form.proof)


@pytest.fixture(scope="module")
def replaced(project_factory):
    """makemigrations writes the hazard; plan_zero_downtime replaces it."""
    project = project_factory("replaced")
    edit_models(project)
    project.manage("makemigrations", "blog", "--name", "hazard_not_null")
    hazard = project.read("blog/migrations/0020_hazard_not_null.py")
    written, output = plan(project, "blog", "0020_hazard_not_null", "--no-verify")
    scenario = Scenario(project, "blog", written, output, collect_files(project, "blog", written))
    scenario.proof = project.check(
        "blog", written=written, back=LAST_BLOG, probes=[old_post_insert(1)], tables=["blog_post"]
    )
    return scenario, hazard


def test_replaced_migration(replaced):
    scenario, hazard = replaced
    assert "AddField" in hazard and "AlterField" in hazard
    assert not (scenario.project.root / "blog/migrations/0020_hazard_not_null.py").exists()
    assert scenario.written[0].startswith("0020_")
    assert "Replaces blog.0020_hazard_not_null" in scenario.files[f"{scenario.written[0]}.py"]
    assert_golden("not_null_replaced", scenario.files)
    assert_proven(scenario.proof)


def test_built_in_verification(project_factory):
    """Without --no-verify the command proves the plan itself: state, a fresh process, a round
    trip on seeded rows with the previous release at work, the audit."""
    project = project_factory("verified")
    project.edit(
        "shop/models.py",
        "    notes = models.TextField(blank=True)\n",
        "    notes = models.TextField(blank=True)\n"
        '    channel = models.CharField(max_length=20, default="web")\n',
    )
    written, output = plan(project, "shop")
    assert written == ["0026_add_order_channel"]
    assert "Verified on PostgreSQL" in output
    assert "the project imports in a fresh process" in output
    assert "forward, back and forward again on" in output
    assert "with every value kept; the previous release's" in output
    assert "audit: no error" in output


@pytest.fixture(scope="module")
def volatile(project_factory):
    """A NOT NULL field whose database default is volatile: all steps ship in one release."""
    if django.VERSION < (5, 0):
        pytest.skip("db_default (here a volatile one) needs Django 5.0+")
    project = project_factory("volatile")
    project.edit(
        "blog/models.py",
        "from django.db import models\n",
        "from django.contrib.postgres.functions import RandomUUID\nfrom django.db import models\n",
    )
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        "    token = models.UUIDField(db_default=RandomUUID())\n",
    )
    written, output = plan(project, "blog", "--no-verify")
    scenario = Scenario(project, "blog", written, output, collect_files(project, "blog", written))
    scenario.proof = project.check(
        "blog",
        written=written,
        back=LAST_BLOG,
        probes=[old_post_insert(1)],
        facts=[
            "SELECT count(*), count(DISTINCT token) FROM blog_post",
            NULLABLE.format("token"),
        ],
        tables=["blog_post"],
    )
    return scenario


def test_volatile_db_default_in_one_release(volatile):
    assert_golden("not_null_volatile_db_default", volatile.files)
    assert "zero_downtime_plan.json" not in volatile.files  # nothing for a later release
    assert "SET DEFAULT (GEN_RANDOM_UUID())" in "".join(volatile.files.values())
    assert_proven(volatile.proof)
    counts, nullable = volatile.proof["facts"]
    rows, distinct = counts[0]
    assert rows == distinct  # every row has its own value, the probe's too
    assert nullable == [["NO"]]
