"""``plan_zero_downtime``: a plan is verified with the previous release at work.

The verification's audit of the written migrations runs with the rehearsal on
unless ``--no-rehearse`` (docs/rehearsal.md): while each new migration runs on
seeded tables, the models of the state before the plan send their queries on
other connections. A plan passes only if none of them fails and none waits past
the threshold; otherwise the verification fails, names the query and
PostgreSQL's error, and every file is put back, as for any failed verification.
"""

from __future__ import annotations

import re

from .helpers import plan

LAST_BLOG = "0019_hazard_update_without_where"

#: Fast: the mechanics, not big tables (settings the command reads, as a project sets them).
REHEARSAL_SETTINGS = (
    "\nMIGRATION_GUARD = {**globals().get('MIGRATION_GUARD', {}), "
    "'rehearse_rows': 2000, 'rehearse_rate': 50.0}\n"
)


def fast_rehearsal(project) -> None:
    path = project.root / "sample_project" / "settings.py"
    path.write_text(path.read_text() + REHEARSAL_SETTINGS)


def test_a_generated_not_null_plan_passes_with_the_previous_release_at_work(project_factory):
    """New NOT NULL fields on the busy blog_post: the generated plan (database default,
    nullable column and batched backfill) lets the previous release's queries through."""
    project = project_factory("rehearsed")
    fast_rehearsal(project)
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        '    rating = models.IntegerField("rating", default=3)\n',
    )
    project.edit(
        "blog/models.py",
        "    comment_count = models.IntegerField(null=True, blank=True, editable=False)\n",
        "    comment_count = models.IntegerField(default=0, editable=False)\n",
    )
    written, output = plan(project, "blog")
    assert written == [
        "0020_add_post_rating_and_post_comment_count_not_null_state",
        "0021_fill_post_comment_count",
    ], output
    assert "Verified on PostgreSQL" in output and "audit: no error" in output
    found = re.search(
        r"under the previous release's traffic: ([\d,]+) queries while (\d+) migration\(s\) ran on "
        r"2,000 rows per table, none failed, longest wait ([\d.]+) s \(threshold 1 s\)",
        output,
    )
    assert found, output
    queries, migrations, longest = int(found[1].replace(",", "")), int(found[2]), float(found[3])
    # every migration ran under traffic, the backfill too (code: the planner names its table)
    assert migrations == len(written) and queries >= 5 * migrations
    assert longest < 1.0
    assert "skipped: the previous release's traffic" not in output


def test_a_step_that_drops_a_column_the_previous_release_reads_fails_verification(
    project_factory,
):
    """A migration with a NOT NULL field the planner plans and a column dropped by hand-written
    SQL, which the planner carries over as it is: the previous release still reads the column,
    so the verification fails, names the query and the error, and nothing is kept."""
    project = project_factory("rehearsed_unsafe")
    fast_rehearsal(project)
    hazard = project.root / "blog" / "migrations" / "0020_hazard_drop_by_hand.py"
    hazard.write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('blog', '{LAST_BLOG}')]\n\n"
        "    operations = [\n"
        "        migrations.AddField('post', 'rating', models.IntegerField(default=3)),\n"
        "        migrations.RunSQL(\n"
        "            'ALTER TABLE blog_post DROP COLUMN summary',\n"
        "            \"ALTER TABLE blog_post ADD COLUMN summary text NOT NULL DEFAULT ''\",\n"
        "        ),\n"
        "    ]\n"
    )
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        "    rating = models.IntegerField(default=3)\n",
    )
    before = project.migrations("blog")
    models_before = project.read("blog/models.py")
    written, output = plan(project, "blog", "0020_hazard_drop_by_hand", expect=1)
    assert "Verification FAILED" in output and "every file was restored" in output
    lines = [line for line in output.splitlines() if line.startswith("  rehearsal: ")]
    assert lines, output
    # the failed query: its kind, its table and PostgreSQL's error
    assert any(
        "the previous release's SELECT by primary key on blog_post failed" in line
        and "column blog_post.summary does not exist (SQLSTATE 42703)" in line
        for line in lines
    ), lines
    # restored as for any failed verification
    assert written == [] and project.migrations("blog") == before
    assert project.read("blog/models.py") == models_before


def test_no_rehearse_verifies_without_the_traffic(project_factory):
    project = project_factory("not_rehearsed")
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        '    rating = models.IntegerField("rating", default=3)\n',
    )
    written, output = plan(project, "blog", "--no-rehearse")
    assert written and "Verified on PostgreSQL" in output and "audit: no error" in output
    assert "queries while" not in output and "rehearsal" not in output
