"""The planner's building blocks, without PostgreSQL: source edits, scheduling, facts."""

from __future__ import annotations

import textwrap

import pytest
from django.db import migrations, models

from migration_guard.planner.model import ModelEdit, PendingStep, Step
from migration_guard.planner.modeledit import apply_edits
from migration_guard.planner.record import render_record
from migration_guard.planner.schedule import schedule
from migration_guard.planner.sourcecode import (
    carried_code,
    parse_migration_file,
    preferred_quote,
    rewire_dependency,
)
from migration_guard.planner.strategies.base import is_volatile_sql, keys_conflict
from migration_guard.planner.strategies.type_change import binary_coercible
from migration_guard.planner.writer import sort_imports

# -- models.py edits ----------------------------------------------------------------------

MODELS = textwrap.dedent(
    '''\
    from django.db import models


    class Post(models.Model):
        """A post."""

        title = models.CharField(max_length=200)
        body = models.TextField(
            "body",
            blank=True,
        )
        score = models.IntegerField(
            default=0, help_text="points")
        count = models.IntegerField()

        class Meta:
            ordering = ["title"]

        def __str__(self):
            return self.title


    class Tag(models.Model):
        name = models.CharField(max_length=50)

        def __str__(self):
            return self.name
    '''
)


def edit(field, option, source, model="Post", **kw):
    return ModelEdit("blog", model, field, option, source, **kw)


def test_keyword_on_a_one_line_field():
    result = apply_edits(MODELS, [edit("title", "db_column", "'headline'")])
    assert '    title = models.CharField(max_length=200, db_column="headline")\n' in result.text


def test_keyword_on_a_field_with_one_argument_per_line():
    result = apply_edits(MODELS, [edit("body", "db_column", "'content'")])
    assert '        blank=True,\n        db_column="content",\n    )\n' in result.text


def test_keyword_when_arguments_start_on_the_call_line():
    result = apply_edits(MODELS, [edit("score", "db_default", "0", copy_from="default")])
    assert 'default=0, help_text="points", db_default=0)' in result.text


def test_keyword_on_a_field_without_arguments():
    result = apply_edits(MODELS, [edit("count", "db_default", "0")])
    assert "count = models.IntegerField(db_default=0)" in result.text


def test_existing_keyword_is_replaced():
    once = apply_edits(MODELS, [edit("title", "db_column", "'a'")]).text
    twice = apply_edits(once, [edit("title", "db_column", "'b'")]).text
    assert 'db_column="b"' in twice and 'db_column="a"' not in twice


def test_meta_option_added_to_existing_meta():
    result = apply_edits(MODELS, [edit(None, "db_table", "'blog_article'")])
    assert '        ordering = ["title"]\n        db_table = "blog_article"\n' in result.text


def test_meta_created_after_the_fields():
    result = apply_edits(MODELS, [edit(None, "db_table", "'blog_label'", model="Tag")])
    assert (
        "    name = models.CharField(max_length=50)\n\n"
        '    class Meta:\n        db_table = "blog_label"\n\n    def __str__' in result.text
    )


def test_unknown_model_is_refused_with_advice():
    result = apply_edits(MODELS, [edit("x", "db_column", "'y'", model="Nope")])
    assert result.text == MODELS
    assert result.refused and "by hand" in result.refused[0]


# Issue 12, item 3: edits that made models.py stop importing, while "Verified" was printed.
TRICKY = textwrap.dedent(
    """\
    from django.db import models


    def flag_field():
        return models.BooleanField(default=False)


    class Order(models.Model):
        paid = models.BooleanField(
            default=False,  # off, for now (set by the payment hook)
        )
        shipped = models.BooleanField(default=False)  # one, two, three
        note: models.TextField = models.TextField(
            "note"
        )
        flag = flag_field()
        count = models.IntegerField(default=0, help_text="a, b")  # trailing, comment
    """
)


def _namespace(text):
    namespace: dict[str, object] = {}
    exec(compile(text.split("class Order")[0], "<models>", "exec"), namespace)
    return namespace


def test_keyword_after_a_trailing_comment_with_a_comma_stays_code():
    result = apply_edits(
        TRICKY, [edit("paid", "db_default", "False", model="Order")], _namespace(TRICKY)
    )
    assert not result.refused
    assert (
        "    paid = models.BooleanField(\n"
        "        default=False,  # off, for now (set by the payment hook)\n"
        "        db_default=False,\n"
        "    )\n"
    ) in result.text
    compile(result.text, "models.py", "exec")


def test_keyword_before_a_comment_after_the_call():
    result = apply_edits(
        TRICKY,
        [
            edit("shipped", "db_default", "False", model="Order", copy_from="default"),
            edit("count", "db_default", "0", model="Order", copy_from="default"),
        ],
        _namespace(TRICKY),
    )
    assert "shipped = models.BooleanField(default=False, db_default=False)  # one, two, three" in (
        result.text
    )
    assert (
        'count = models.IntegerField(default=0, help_text="a, b", db_default=0)  # trailing,'
        in (result.text)
    )
    compile(result.text, "models.py", "exec")


def test_keyword_on_an_annotated_field_with_one_argument_on_its_own_line():
    result = apply_edits(
        TRICKY, [edit("note", "db_column", "'memo'", model="Order")], _namespace(TRICKY)
    )
    assert '        "note",\n        db_column="memo"\n    )' in result.text
    compile(result.text, "models.py", "exec")


def test_field_built_by_a_helper_is_refused_with_the_field_named():
    result = apply_edits(
        TRICKY, [edit("flag", "db_default", "False", model="Order")], _namespace(TRICKY)
    )
    assert result.text == TRICKY
    (refusal,) = result.refused
    assert refusal.startswith("Order.flag: add db_default=False by hand")
    assert "flag_field()" in refusal and "not a model field class" in refusal


def test_every_edit_leaves_the_rest_of_the_file_byte_for_byte():
    result = apply_edits(
        TRICKY, [edit("paid", "db_default", "False", model="Order")], _namespace(TRICKY)
    )
    before, after = TRICKY.splitlines(), result.text.splitlines()
    assert [line for line in after if line not in before] == ["        db_default=False,"]


def test_preferred_quote():
    assert preferred_quote(MODELS) == '"'
    assert preferred_quote("a = 'x'\nb = 'y'\n") == "'"


# -- migration source ------------------------------------------------------------------------

MIGRATION = textwrap.dedent(
    '''\
    """A hazard."""

    from django.db import migrations, models
    from django.db.models import F, Value

    BATCH = 10
    UNUSED = 3


    def forwards(apps, schema_editor):
        """Uses F and BATCH."""
        return F("x"), BATCH


    class Migration(migrations.Migration):
        initial = True
        migration_guard_ignore = ["lock-timeout-missing"]

        dependencies = [
            ("blog", "0001_initial"),
        ]

        operations = [
            migrations.AddField("post", "x", models.IntegerField(null=True)),
            # keep this comment
            migrations.RunPython(forwards, migrations.RunPython.noop),
        ]
    '''
)


def test_parse_and_carry_code(tmp_path):
    path = tmp_path / "0002_x.py"
    path.write_text(MIGRATION)
    parsed = parse_migration_file(path)
    assert parsed.dependencies_source == '        ("blog", "0001_initial"),\n'
    assert [op.comment for op in parsed.operations] == ["", "keep this comment"]
    run_python = parsed.operations[1]
    assert run_python.text == "migrations.RunPython(forwards, migrations.RunPython.noop)"
    imports, code = carried_code(parsed, set(run_python.names))
    assert imports == ["from django.db import migrations", "from django.db.models import F"]
    assert [c.splitlines()[0] for c in code] == ["BATCH = 10", "def forwards(apps, schema_editor):"]
    assert parsed.class_attributes == [
        "initial = True",
        'migration_guard_ignore = ["lock-timeout-missing"]',
    ]


def test_writer_layout_follows_django():
    from migration_guard.planner.model import PlannedMigration
    from migration_guard.planner.writer import render_migration

    planned = PlannedMigration(
        app_label="blog",
        name="0002_x",
        atomic=False,
        steps=[],
        dependencies=[("blog", "0001_initial"), ("__setting__", "AUTH_USER_MODEL")],
        class_attributes=["initial = True"],
    )
    text = render_migration(planned, "# header")
    assert text == (
        "# header\n\n"
        "from django.conf import settings\n"
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n\n"
        "    initial = True\n\n"
        "    atomic = False\n\n"
        "    dependencies = [\n"
        "        ('blog', '0001_initial'),\n"
        "        migrations.swappable_dependency(settings.AUTH_USER_MODEL),\n"
        "    ]\n\n"
        "    operations = [\n"
        "    ]\n"
    )


def test_rewire_dependency_keeps_quotes_and_layout():
    text = 'class Migration(m.Migration):\n    dependencies = [("blog", "0002_x"), ("shop", "0002_x")]\n'  # noqa: E501
    out = rewire_dependency(text, "blog", "0002_x", "0004_y")
    assert (
        out
        == 'class Migration(m.Migration):\n    dependencies = [("blog", "0004_y"), ("shop", "0002_x")]\n'  # noqa: E501
    )


# -- scheduling --------------------------------------------------------------------------


def step(
    slug,
    *,
    atomic=True,
    separate=False,
    data=False,
    locks=(),
    scans=(),
    models=("a.m.f",),
    release=1,
):
    return Step(
        strategy="s",
        slug=slug,
        phase="expand",
        title=slug,
        why="",
        operations=[],
        atomic=atomic,
        separate=separate,
        data=data,
        locks=frozenset(locks),
        scans=frozenset(scans),
        models=frozenset(models),
        release=release,
        resume={} if release > 1 else None,
    )


def chain(*steps):
    from migration_guard.planner.model import Chain

    return Chain(strategy="s", steps=list(steps))


def test_steps_of_independent_chains_share_migrations():
    a = chain(
        step("add_a", locks=["t"], models=["a.m.a"]),
        step("fill_a", atomic=False, data=True, models=["a.m.a"]),
        step("check_a", locks=["t"], models=["a.m.a"]),
        step("validate_a", separate=True, locks=["t"], scans=["t"], models=["a.m.a"]),
    )
    b = chain(
        step("add_b", locks=["t"], models=["a.m.b"]),
        step("fill_b", atomic=False, data=True, models=["a.m.b"]),
        step("check_b", locks=["t"], models=["a.m.b"]),
        step("validate_b", separate=True, locks=["t"], scans=["t"], models=["a.m.b"]),
    )
    slots, later = schedule([a, b])
    assert [[s.slug for s in slot.steps] for slot in slots] == [
        ["add_a", "add_b"],
        ["fill_a", "fill_b"],
        ["check_a", "check_b"],
        ["validate_a"],
        ["validate_b"],  # a scan never joins a transaction already holding a lock
    ]
    assert later == []


def test_later_release_and_everything_after_it_are_pending():
    slots, later = schedule([chain(step("now"), step("next", release=2), step("after"))])
    assert [s.slug for s in slots[0].steps] == ["now"]
    assert [(s.slug, s.release) for s in later] == [("next", 2), ("after", 2)]


def test_chains_on_the_same_field_keep_their_order():
    first = chain(step("x1", models=["a.m.f"]), step("x2", atomic=False, models=["a.m.f"]))
    second = chain(step("y1", models=["a.m.f"]))
    slots, _ = schedule([first, second])
    assert [[s.slug for s in slot.steps] for slot in slots] == [["x1"], ["x2"], ["y1"]]


def test_keys_conflict():
    assert keys_conflict({"a.m"}, {"a.m.f"})
    assert keys_conflict({"a.m.f"}, {"a.m.f"})
    assert not keys_conflict({"a.m.f"}, {"a.m.g"})
    assert not keys_conflict({"a.m"}, {"a.n.f"})


# -- facts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "coercible"),
    [
        ("varchar(100)", "varchar(200)", True),
        ("varchar(200)", "varchar(100)", False),
        ("varchar(100)", "text", True),
        ("text", "varchar", True),
        ("text", "varchar(10)", False),
        ("numeric(10, 2)", "numeric(12, 2)", True),
        ("numeric(10, 2)", "numeric(12, 3)", False),
        ("integer", "bigint", False),
        ("integer", "integer", True),
    ],
)
def test_binary_coercible(old, new, coercible):
    assert binary_coercible(old, new) is coercible


def test_volatile_defaults():
    assert is_volatile_sql("(GEN_RANDOM_UUID())")
    assert is_volatile_sql("(random() * 10)")
    assert not is_volatile_sql("(STATEMENT_TIMESTAMP())")
    assert not is_volatile_sql("0")


def test_imports_sorted_like_django():
    assert sort_imports(
        {"from django.db import models", "import uuid", "from django.db import transaction"}
    ) == ["import uuid", "from django.db import migrations, models, transaction"]


def test_record_is_removed_with_its_last_entry():
    assert render_record("blog", []) is None
    entry = PendingStep(2, 2, "blog.0020_x", "s", "slug", "title", {"k": 1}, ("0020_x",))
    text = render_record("blog", [entry])
    assert text is not None and '"release": 2' in text
    assert PendingStep.from_json(entry.as_json()) == entry


# -- input --------------------------------------------------------------------------------


def test_option_removals_before_a_deleted_model_go_with_it():
    """Django 6.0+'s autodetector removes Meta.indexes and Meta.constraints before
    DeleteModel (unique_together on every version): the model's removal takes them along."""
    from migration_guard.planner.inputs import fold_into_deleted_models

    other = migrations.RemoveField("comment", "author")
    operations = [
        migrations.RemoveIndex("series", "blog_series_owner_recent_idx"),
        migrations.RemoveConstraint("series", "blog_series_unique_slug_per_owner"),
        migrations.AlterUniqueTogether("series", set()),
        other,
        migrations.DeleteModel("Series"),
    ]
    kept, sources, folded = fold_into_deleted_models(operations, list("abcde"))
    assert kept == [other, operations[-1]]
    assert sources == ["d", "e"]
    assert folded == operations[:3]
    # an index removed before another change to the model stays an operation of its own
    change = migrations.AlterField("series", "title", models.TextField())
    operations = [operations[0], change, operations[-1]]
    kept, _, folded = fold_into_deleted_models(operations, [None] * 3)
    assert (kept, folded) == (operations, [])
    # a model that stays keeps its removals
    kept, _, folded = fold_into_deleted_models(operations[:1], [None])
    assert (kept, folded) == (operations[:1], [])


def _slot(slug: str, atomic: bool = True):
    from migration_guard.planner.schedule import Slot

    slot = Slot(atomic=atomic, data=False)
    slot.add(Step(strategy="x", slug=slug, phase="expand", title="t", why="", operations=[]))
    return slot


class _Loader:
    def __init__(self, names):
        self.disk_migrations = {("app", name): None for name in names}


def test_plan_names_never_take_the_replaced_migration_s_name():
    """A plan named like the migration it replaces would be deleted with it (the corpus:
    wagtailembeds 0006_add_embed_hash)."""
    from migration_guard.planner.service import _names

    loader = _Loader(["0005_x", "0006_add_embed_hash", "0007_populate_hash"])
    names = _names(
        [_slot("add_embed_hash")], 6, None, loader, "app", replaced="0006_add_embed_hash"
    )
    assert names == ["0006_add_embed_hash_2"]


def test_plan_names_in_the_middle_of_a_history_take_sub_numbers():
    from migration_guard.planner.service import _names

    loader = _Loader(["0006_hazard", "0007_next", "0008_last"])
    slots = [_slot("expand"), _slot("backfill", atomic=False)]
    assert _names(slots, 6, None, loader, "app", replaced="0006_hazard") == [
        "0006_1_expand",
        "0006_2_backfill",
    ]
    at_the_end = _Loader(["0006_hazard"])
    assert _names(slots, 6, None, at_the_end, "app", replaced="0006_hazard") == [
        "0006_expand",
        "0007_backfill",
    ]


def test_staging_refuses_two_changes_of_one_file(tmp_path):
    from migration_guard.planner.model import FileChange
    from migration_guard.planner.staging import Staging

    path = tmp_path / "0006_a.py"
    with pytest.raises(ValueError, match="twice"):
        Staging.prepare(
            tmp_path / ".staging",
            [FileChange(path, None, "x", "migration"), FileChange(path, "x", None, "replaced")],
        )
    assert not (tmp_path / ".staging").exists()
