"""set-not-null: SET NOT NULL scans an existing table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from types import SimpleNamespace

from migration_guard.pgversion import PgFacts
from migration_guard.rules.set_not_null import SetNotNull

RULE = "set-not-null"

POST = (
    "migrations.CreateModel('Post', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('word_count', models.IntegerField(null=True)), "
    "('summary', models.TextField(null=True))], "
    "options={'db_table': 'blog_post'})"
)
NOT_NULL = "migrations.AlterField('post', 'word_count', models.IntegerField())"


def runsql(*sql: str) -> str:
    return f"migrations.RunSQL({list(sql)!r}, migrations.RunSQL.noop)"


def test_alter_field_to_not_null_err(make_app):
    app = make_app([POST], [NOT_NULL])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "locking"
    assert finding.table == "blog_post"
    assert "AlterField sets blog_post.word_count NOT NULL" in finding.message
    assert "ACCESS EXCLUSIVE" in finding.message and "every row" in finding.message
    assert "NOT VALID" in finding.fix and "VALIDATE CONSTRAINT" in finding.fix
    assert "SeparateDatabaseAndState" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "AccessExclusiveLock"
    assert finding.scans
    assert finding.plan_command
    assert any("SET NOT NULL" in sql for sql in finding.sql)


def test_alter_field_with_default_backfill_err(make_app):
    # Django fills the NULLs with an UPDATE first, then sets NOT NULL: still one finding.
    app = make_app(
        [POST], ["migrations.AlterField('post', 'word_count', models.IntegerField(default=0))"]
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.evidence.value == "observed"


def test_runsql_set_not_null_err(make_app):
    app = make_app([POST], [runsql("ALTER TABLE blog_post ALTER COLUMN summary SET NOT NULL")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "RunSQL sets blog_post.summary NOT NULL" in finding.message
    assert finding.evidence.value == "observed"


def test_validated_check_in_an_earlier_migration_ok(make_app):
    # The sample's blog 0009/0010 pattern.
    app = make_app(
        [POST],
        [
            runsql(
                "ALTER TABLE blog_post ADD CONSTRAINT blog_post_summary_not_null "
                "CHECK (summary IS NOT NULL) NOT VALID"
            )
        ],
        [
            "migrations.SeparateDatabaseAndState("
            "state_operations=[migrations.AlterField('post', 'summary', models.TextField())], "
            "database_operations=["
            + runsql(
                "ALTER TABLE blog_post VALIDATE CONSTRAINT blog_post_summary_not_null",
                "ALTER TABLE blog_post ALTER COLUMN summary SET NOT NULL",
                "ALTER TABLE blog_post DROP CONSTRAINT blog_post_summary_not_null",
            )
            + "])"
        ],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_check_added_valid_in_the_same_migration_ok(make_app):
    app = make_app(
        [POST],
        [
            "migrations.AddConstraint('post', models.CheckConstraint("
            "condition=models.Q(word_count__isnull=False), name='post_wc_nn'))"
            if _has_condition()
            else "migrations.AddConstraint('post', models.CheckConstraint("
            "check=models.Q(word_count__isnull=False), name='post_wc_nn'))",
            NOT_NULL,
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_check_on_another_column_does_not_count_err(make_app):
    app = make_app(
        [POST],
        [
            runsql(
                "ALTER TABLE blog_post ADD CONSTRAINT blog_post_summary_nn "
                "CHECK (summary IS NOT NULL) NOT VALID",
                "ALTER TABLE blog_post VALIDATE CONSTRAINT blog_post_summary_nn",
                "ALTER TABLE blog_post ALTER COLUMN word_count SET NOT NULL",
            )
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "blog_post.word_count" in finding.message


def test_check_not_valid_and_not_validated_does_not_count_err(make_app):
    app = make_app(
        [POST],
        [
            runsql(
                "ALTER TABLE blog_post ADD CONSTRAINT blog_post_wc_nn "
                "CHECK (word_count IS NOT NULL) NOT VALID",
                "ALTER TABLE blog_post ALTER COLUMN word_count SET NOT NULL",
            )
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.evidence.value == "observed"


def test_column_added_earlier_in_the_change_is_still_scanned_err(make_app):
    # The table existed: SET NOT NULL scans all of it, however young the column is.
    app = make_app(
        [POST],
        ["migrations.AddField('post', 'likes', models.IntegerField(null=True, default=0))"],
        ["migrations.AlterField('post', 'likes', models.IntegerField(default=0))"],
    )
    report = app.audit(2, 3)
    (finding,) = app.findings(report, RULE)
    assert "blog_post.likes" in finding.message
    assert finding.evidence.value == "observed"


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([POST], [NOT_NULL])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []


def _has_condition() -> bool:
    import django

    return django.VERSION >= (5, 1)


def test_fix_names_the_postgres_18_not_null_constraint():
    ctx = SimpleNamespace(pg=PgFacts(18))
    assert "NOT NULL word_count NOT VALID" in SetNotNull._fix("blog_post", "word_count", ctx)  # type: ignore[arg-type]
    ctx = SimpleNamespace(pg=PgFacts(15))
    assert "NOT NULL word_count NOT VALID" not in SetNotNull._fix("blog_post", "word_count", ctx)  # type: ignore[arg-type]
    ctx = SimpleNamespace(pg=PgFacts(11))
    assert "Before PostgreSQL 12" in SetNotNull._fix("blog_post", "word_count", ctx)  # type: ignore[arg-type]


def test_check_validated_in_an_earlier_migration_of_the_change_ok(make_app):
    """CHECK added NOT VALID and validated in one migration, SET NOT NULL in the next."""
    app = make_app(
        [
            "migrations.CreateModel('Post', [('id', models.BigAutoField(primary_key=True)), "
            "('words', models.IntegerField(null=True))])"
        ],
        [
            "migrations.RunSQL('ALTER TABLE {t}_post ADD CONSTRAINT words_nn "
            "CHECK (words IS NOT NULL) NOT VALID; "
            "ALTER TABLE {t}_post VALIDATE CONSTRAINT words_nn', "
            "'ALTER TABLE {t}_post DROP CONSTRAINT words_nn')"
        ],
        ["migrations.AlterField('post', 'words', models.IntegerField())"],
    )
    for name in app.names[1:2]:
        path = app.path / "migrations" / f"{name}.py"
        path.write_text(path.read_text().replace("{t}", app.label))
    report = app.audit(2, 3)
    assert app.findings(report, "set-not-null") == []
    third = next(m for m in report.migrations if m.name == app.names[2])
    assert all(not seen.scans for seen in third.trace)
