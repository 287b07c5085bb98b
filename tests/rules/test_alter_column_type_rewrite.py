"""alter-column-type-rewrite: a type change that rewrites an existing table and its indexes."""

from __future__ import annotations

import psycopg
import pytest

from migration_guard.rules.alter_column_type_rewrite import (
    REWRITE,
    SAFE,
    TIMEZONE,
    change_kind,
    parse_type,
)

RULE = "alter-column-type-rewrite"

ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True)), "
    "('price', models.DecimalField(max_digits=8, decimal_places=2, null=True)), "
    "('sku', models.CharField(max_length=20, null=True)), "
    "('placed', models.DateTimeField(null=True))], "
    "options={'db_table': 'shop_order'})"
)


def alter(field: str, definition: str) -> str:
    return f"migrations.AlterField('order', {field!r}, models.{definition})"


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_integer_to_bigint_err(make_app):
    app = make_app([ORDER], [alter("qty", "BigIntegerField(null=True)")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "locking"
    assert finding.table == "shop_order"
    assert "shop_order.qty from integer to bigint" in finding.message
    assert "ACCESS EXCLUSIVE" in finding.message and "rebuilds all its indexes" in finding.message
    assert "AddField" in finding.fix and "backfill" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "AccessExclusiveLock"
    assert "shop_order" in finding.rewritten
    assert finding.plan_command
    assert any("TYPE bigint" in sql for sql in finding.sql)


@pytest.mark.parametrize(
    ("field", "definition"),
    [
        ("sku", "CharField(max_length=10, null=True)"),  # shorter varchar
        ("price", "DecimalField(max_digits=10, decimal_places=3, null=True)"),  # new scale
    ],
)
def test_rewriting_alter_field_err(make_app, field, definition):
    app = make_app([ORDER], [alter(field, definition)])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert f"shop_order.{field}" in finding.message
    assert finding.evidence.value == "observed"
    assert "shop_order" in finding.rewritten


@pytest.mark.parametrize(
    ("field", "definition"),
    [
        ("sku", "CharField(max_length=40, null=True)"),  # longer varchar
        ("sku", "TextField(null=True)"),  # varchar -> text
        ("price", "DecimalField(max_digits=12, decimal_places=2, null=True)"),  # more precision
    ],
)
def test_binary_coercible_alter_field_ok(make_app, field, definition):
    app = make_app([ORDER], [alter(field, definition)])
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []
    assert app.findings(report, "observed-table-work-under-lock") == []


def test_runsql_with_type_known_from_state_err(make_app):
    app = make_app([ORDER], [runsql("ALTER TABLE shop_order ALTER COLUMN qty TYPE bigint")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert "RunSQL changes shop_order.qty from integer to bigint" in finding.message
    assert finding.evidence.value == "observed"


def test_runsql_widening_known_from_state_ok(make_app):
    app = make_app(
        [ORDER], [runsql("ALTER TABLE shop_order ALTER COLUMN sku TYPE character varying(64)")]
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_runsql_with_unknown_old_type_is_a_warning_to_verify(make_app):
    # The table is not in Django's state: the old type of the column is unknown.
    app = make_app(
        [ORDER, runsql("CREATE TABLE legacy_log (id bigint PRIMARY KEY, code integer)")],
        [runsql("ALTER TABLE legacy_log ALTER COLUMN code TYPE bigint")],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "warning"
    assert "old type is unknown" in finding.message and "verify" in finding.message
    assert finding.table == "legacy_log"
    # The trace confirms the rewrite it asks to verify.
    assert finding.evidence.value == "observed"


def test_runsql_non_trivial_using_err(make_app):
    sql = "ALTER TABLE shop_order ALTER COLUMN sku TYPE varchar(40) USING upper(sku)"
    app = make_app([ORDER], [runsql(sql)])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert "USING upper(sku)" in finding.message
    assert finding.evidence.value == "observed"


def test_timestamptz_to_timestamp_depends_on_the_time_zone(make_app):
    app = make_app([ORDER], [runsql("ALTER TABLE shop_order ALTER COLUMN placed TYPE timestamp")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "TimeZone is UTC" in finding.message
    # Django's migration session runs in UTC (USE_TZ = True): PostgreSQL skipped the rewrite,
    # so the trace contradicts the prediction and the warning drops to info.
    assert finding.evidence.value == "contradicted"
    assert finding.severity.value == "info"


def test_old_type_from_earlier_sql_of_the_migration(make_app):
    app = make_app(
        [ORDER, runsql("CREATE TABLE legacy_log (id bigint PRIMARY KEY)")],
        [
            runsql("ALTER TABLE legacy_log ADD COLUMN code integer"),
            runsql("ALTER TABLE legacy_log ALTER COLUMN code TYPE bigint"),
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert "legacy_log.code from integer to bigint" in finding.message
    assert finding.evidence.value == "observed"


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [alter("qty", "BigIntegerField(null=True)")])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []


# --- the table of catalog-only changes, checked against PostgreSQL itself ------------------

PAIRS = [
    ("varchar(10)", "varchar(20)"),
    ("character varying(10)", "character varying"),
    ("varchar(10)", "text"),
    ("varchar", "text"),
    ("text", "varchar"),
    ("text", "varchar(10)"),
    ("varchar(20)", "varchar(10)"),
    ("numeric(8,2)", "numeric(10,2)"),
    ("numeric(8, 2)", "numeric"),
    ("numeric(8,2)", "numeric(10,3)"),
    ("numeric", "numeric(10,2)"),
    ("varbit(5)", "varbit(10)"),
    ("bit varying(5)", "varbit"),
    ("bit(5)", "varbit"),
    ("cidr", "inet"),
    ("inet", "cidr"),
    ("xml", "text"),
    ("timestamp(3)", "timestamp(6)"),
    ("timestamp(3) with time zone", "timestamptz"),
    ("timestamp", "timestamp(3)"),
    ("time(3)", "time"),
    ("timetz(3)", "time(6) with time zone"),
    ("char(5)", "char(10)"),
    ("char(5)", "varchar(10)"),
    ("json", "jsonb"),
    ("integer", "bigint"),
    ("int4", "integer"),
    ("smallint", "integer"),
    ("bigint", "integer"),
    ("varchar(10)[]", "varchar(20)[]"),
    ("uuid", "text"),
    ("real", "double precision"),
]


def _rewrites(conn: psycopg.Connection, old: str, new: str, timezone: str) -> bool:
    conn.execute(f"SET TimeZone = '{timezone}'")
    conn.execute("DROP TABLE IF EXISTS mg_type_probe")
    conn.execute(f"CREATE TABLE mg_type_probe (c {old})")
    query = "SELECT relfilenode FROM pg_class WHERE relname = 'mg_type_probe'"
    before = conn.execute(query).fetchone()
    conn.execute(f"ALTER TABLE mg_type_probe ALTER COLUMN c TYPE {new}")
    after = conn.execute(query).fetchone()
    return before != after


def test_change_table_matches_postgres(pg_server):
    """Every SAFE verdict is catalog-only on the server, every REWRITE rewrites."""
    with pg_server.info.connect(autocommit=True) as conn:
        try:
            for old, new in PAIRS:
                verdict = change_kind(parse_type(old), parse_type(new))  # type: ignore[arg-type]
                assert verdict in (SAFE, REWRITE), (old, new)
                assert _rewrites(conn, old, new, "UTC") == (verdict == REWRITE), (old, new)
            for old, new in (("timestamp", "timestamptz"), ("timestamptz", "timestamp")):
                assert change_kind(parse_type(old), parse_type(new)) == TIMEZONE  # type: ignore[arg-type]
                assert _rewrites(conn, old, new, "Europe/Paris")
                assert not _rewrites(conn, old, new, "UTC")  # PG12+
        finally:
            conn.execute("DROP TABLE IF EXISTS mg_type_probe")


def test_parse_type_spellings():
    assert parse_type("character varying(20)") == parse_type('"varchar"(20)')
    assert str(parse_type("timestamp(3) with time zone")) == "timestamptz(3)"
    assert str(parse_type("numeric(10, 2)")) == "numeric(10,2)"
    assert str(parse_type("integer[]")) == "int4[]"
    assert parse_type("pg_catalog.int8") == parse_type("bigint")
    assert parse_type("varchar(n)") is None
    assert parse_type(None) is None
