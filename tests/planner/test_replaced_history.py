"""The sample's own hazard migrations, replaced one by one in the middle of the history.

Migration input for the index, unique, NOT NULL, data-migration, removal and
column-rename strategies. Each replacement keeps the original's dependencies for
its first migration and rewires the migrations that depended on the original;
the whole history then migrates forward and back on a database holding rows
(migrated back to blog 0002 with the untouched sample project first).
"""

from __future__ import annotations

import re

import pytest

from .conftest import assert_golden, assert_proven
from .helpers import collect_files

HAZARDS = [
    "0003_hazard_alter_index_together",
    "0005_hazard_remove_index_together",
    "0006_hazard_alter_field_db_index",
    "0007_hazard_alter_unique_together",
    "0008_hazard_set_not_null",
    "0011_hazard_run_python_with_ddl",
    "0014_hazard_remove_field",
    "0017_hazard_alter_db_column",
    "0018_hazard_delete_model",
]
START = "0002_safe_new_model_with_constraints"
#: Rows written after user_agent left Django's state have it NULL: the sample's own
#: 0015 cannot be unapplied over them (SET NOT NULL). Give them a value first.
UNAPPLIABLE = "UPDATE blog_comment SET user_agent = '' WHERE user_agent IS NULL"


@pytest.fixture(scope="module")
def history(project_factory):
    project = project_factory("history")
    written: dict[str, list[str]] = {}
    outputs: dict[str, str] = {}
    for hazard in HAZARDS:
        before = project.migrations("blog")
        proc = project.plan("blog", hazard, "--no-verify")
        written[hazard] = project.new_migrations("blog", before)
        outputs[hazard] = proc.stdout
    new = [name for names in written.values() for name in names]
    database = project.database()
    project.sql(database, UNAPPLIABLE)
    project.migrate_original(database, "blog", START)
    proof = project.check(
        "blog",
        written=project.migrations("blog"),
        back=START,
        audit=new,
        database=database,
        tables=["blog_post", "blog_comment"],
    )
    # Release 2 of every plan above, in one change.
    before = project.migrations("blog")
    proc = project.plan("blog", "--no-verify")
    release_2 = project.new_migrations("blog", before)
    database2 = project.database()
    project.sql(database2, UNAPPLIABLE)
    project.migrate_original(database2, "blog", START)
    proof2 = project.check(
        "blog",
        written=project.migrations("blog"),
        back=before[-1],
        audit=release_2,
        database=database2,
        tables=["blog_post"],
    )
    return project, written, outputs, proof, release_2, proc.stdout, proof2


def test_every_hazard_is_replaced(history):
    project, written, outputs, *_ = history
    remaining = project.migrations("blog")
    for hazard in HAZARDS:
        assert hazard not in remaining
        assert written[hazard], f"{hazard}: nothing written\n{outputs[hazard]}"
        first = project.read(f"blog/migrations/{written[hazard][0]}.py")
        assert f"Replaces blog.{hazard} (same dependencies)" in first


def test_dependants_are_rewired(history):
    project, written, *_ = history
    # 0004 depended on 0003_hazard_alter_index_together; now on the last of its plan
    text = project.read("blog/migrations/0004_safe_add_index_concurrently.py")
    assert f'("blog", "{written["0003_hazard_alter_index_together"][-1]}")' in text
    text = project.read("blog/migrations/0019_hazard_update_without_where.py")
    assert f'("blog", "{written["0018_hazard_delete_model"][-1]}")' in text


def test_run_python_is_carried_over_by_source(history):
    project, written, outputs, *_ = history
    names = written["0011_hazard_run_python_with_ddl"]
    assert len(names) == 2, outputs["0011_hazard_run_python_with_ddl"]
    data = project.read(f"blog/migrations/{names[1]}.py")
    assert "def count_approved_comments(apps, schema_editor):" in data
    assert "from django.db.models import Count, OuterRef, Subquery" in data
    assert "migrations.RunPython(count_approved_comments, migrations.RunPython.noop)" in data
    # the comment above the operation came along
    assert "# Unapplying drops the column anyway: nothing to undo in the data." in data
    schema = project.read(f"blog/migrations/{names[0]}.py")
    assert "RunPython" not in schema.split("class Migration")[1]


def test_golden(history):
    project, written, *_ = history
    for hazard, names in written.items():
        assert_golden(f"history_{hazard}", collect_files(project, "blog", names))


def test_history_is_proven(history):
    *_, proof, _release_2, _output, _proof2 = history
    assert_proven(proof)


def test_release_2_of_every_plan(history):
    project, *_rest, release_2, output, proof2 = history
    assert "Release 2" in output
    assert_golden("history_release_2", collect_files(project, "blog", release_2))
    assert_proven(proof2)
    assert not (project.root / "blog/migrations/zero_downtime_plan.json").exists()


def test_numbers_stay_unique_where_a_migration_was_replaced(history):
    """Issue 12, item 5: a plan in the middle of a history used to write a second 0007_* and
    0008_*; its files now share the replaced migration's number with a sub-number."""
    project, written, *_ = history
    assert written["0007_hazard_alter_unique_together"] == [
        "0007_1_post_unique_together_index",
        "0007_2_post_unique_together",
    ]
    names = project.migrations("blog")
    numbers = [re.match(r"^\d{4}(?:_\d+(?=_))?", name).group(0) for name in names]
    assert len(numbers) == len(set(numbers)), numbers
    # each plan sorts where its replaced migration was
    for hazard, plan_names in written.items():
        if len(plan_names) > 1:
            number = hazard[:4]
            assert all(name.startswith(f"{number}_") for name in plan_names)
