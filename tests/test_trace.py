"""What the trace observes on PostgreSQL, on two major versions.

These tests look at the raw per-operation trace (``MigrationResult.trace``),
independently of which rule reports the hazard.
"""

from __future__ import annotations

import contextlib
import gc

import pytest

from migration_guard import engine
from migration_guard.collect import SCHEMA, ExecutedStatement
from migration_guard.postgres.scratch import scratch_database
from migration_guard.trace.observe import Tracer, take_snapshot

from .harness import Migration

ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(default=0)), "
    "('ref', models.CharField(max_length=20, null=True)), "
    "('created', models.DateTimeField(null=True))])"
)
CUSTOMER = "migrations.CreateModel('Customer', [('id', models.BigAutoField(primary_key=True))])"


def trace_of(report, index=0, phase="operation"):
    (result,) = report.migrations
    assert result.status == "audited", result.error
    for seen in result.trace:
        if seen.index == index and seen.phase == phase:
            return seen
    raise AssertionError(f"operation {index} was not observed: {result.trace}")


def modes(seen, relation):
    return {lock.mode for lock in seen.locks if lock.relation == relation}


def audit(make_app, url, *migrations, **kwargs):
    app = make_app(*migrations)
    return app, app.audit(database_url=url, **kwargs)


def test_non_concurrent_index_takes_share_lock_and_scans(make_app, versioned_url):
    table_app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        ["migrations.AddIndex('order', models.Index(fields=['created'], name='order_created_ix'))"],
    )
    seen = trace_of(report)
    table = f"{table_app.label}_order"
    assert modes(seen, table) == {"ShareLock"}
    assert table in seen.scanned
    assert seen.rewrites == ()


def test_int_to_bigint_rewrites_under_access_exclusive(make_app, versioned_url):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        ["migrations.AlterField('order', 'qty', models.BigIntegerField(default=0))"],
    )
    seen = trace_of(report)
    table = f"{app.label}_order"
    assert "AccessExclusiveLock" in modes(seen, table)
    assert table in seen.rewritten
    assert f"{table}_pkey" in seen.rewritten  # its indexes are rebuilt too


def test_varchar_widening_does_not_rewrite(make_app, versioned_url):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        ["migrations.AlterField('order', 'ref', models.CharField(max_length=200, null=True))"],
    )
    seen = trace_of(report)
    assert "AccessExclusiveLock" in modes(seen, f"{app.label}_order")
    assert seen.rewrites == ()
    assert seen.scans == ()


def test_positive_integer_column_scans_for_its_check(make_app, versioned_url):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        ["migrations.AddField('order', 'stock', models.PositiveIntegerField(null=True))"],
    )
    seen = trace_of(report)
    table = f"{app.label}_order"
    assert modes(seen, table) == {"AccessExclusiveLock"}
    assert table in seen.scanned, seen
    assert seen.rewrites == ()


def test_nullable_column_is_catalog_only(make_app, versioned_url):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        ["migrations.AddField('order', 'note', models.TextField(null=True))"],
    )
    seen = trace_of(report)
    assert modes(seen, f"{app.label}_order") == {"AccessExclusiveLock"}
    assert seen.scans == ()
    assert seen.rewrites == ()


def test_foreign_key_locks_both_tables_and_scans(make_app, versioned_url):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER, CUSTOMER],
        [
            "migrations.AddField('order', 'customer', models.ForeignKey(null=True, "
            "on_delete=django.db.models.deletion.CASCADE, to='customer'))"
        ],
    )
    seen = trace_of(report)
    order, customer = f"{app.label}_order", f"{app.label}_customer"
    assert "ShareRowExclusiveLock" in modes(seen, customer)
    assert "AccessExclusiveLock" in modes(seen, order)  # the column itself
    # Django defers the column's index to the end of the migration: it is listed where
    # it ran, after the operations, as the operation's deferred SQL.
    assert [(t.index, t.phase) for t in report.migrations[0].trace] == [
        (0, "operation"),
        (0, "deferred"),
    ]
    deferred = trace_of(report, phase="deferred")
    assert "ShareLock" in modes(deferred, order)
    assert order in deferred.scanned


def test_check_constraint_validates_with_a_scan_but_not_valid_does_not(make_app, versioned_url):
    condition = "check" if __import__("django").VERSION < (5, 1) else "condition"
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        [
            f"migrations.AddConstraint('order', models.CheckConstraint({condition}="
            "models.Q(qty__gte=0), name='order_qty_gte_0'))"
        ],
    )
    table = f"{app.label}_order"
    seen = trace_of(report)
    assert modes(seen, table) == {"AccessExclusiveLock"}
    assert table in seen.scanned

    app2 = make_app(
        [ORDER],
        [
            'migrations.RunSQL(\'ALTER TABLE "{t}_order" ADD CONSTRAINT q CHECK (qty >= 0) '
            "NOT VALID', 'ALTER TABLE \"{t}_order\" DROP CONSTRAINT q')"
        ],
    )
    # the label is only known once the app exists: rewrite the migration with it
    path = app2.path / "migrations" / f"{app2.names[1]}.py"
    path.write_text(path.read_text().replace("{t}", app2.label))
    report2 = app2.audit(database_url=versioned_url)
    seen2 = trace_of(report2)
    assert modes(seen2, f"{app2.label}_order") == {"AccessExclusiveLock"}
    assert seen2.scans == ()


def test_concurrent_index_in_non_atomic_migration_is_sampled(make_app, versioned_url):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        Migration(
            ["AddIndexConcurrently('order', models.Index(fields=['created'], name='oc_ix'))"],
            atomic=False,
            imports="from django.contrib.postgres.operations import AddIndexConcurrently",
        ),
    )
    seen = trace_of(report)
    assert seen.method == "sampled"
    assert modes(seen, f"{app.label}_order") == {"ShareUpdateExclusiveLock"}
    assert not report.findings or all(f.severity.value != "error" for f in report.findings)


def test_non_atomic_migration_statements_are_observed_in_their_own_transaction(
    make_app, versioned_url
):
    app, report = audit(
        make_app,
        versioned_url,
        [ORDER],
        Migration(
            ["migrations.AlterField('order', 'qty', models.BigIntegerField(default=0))"],
            atomic=False,
        ),
    )
    seen = trace_of(report)
    table = f"{app.label}_order"
    assert seen.method == "transaction"
    assert "AccessExclusiveLock" in modes(seen, table)
    assert table in seen.rewritten


def test_runpython_locks_are_observed_at_operation_end(make_app, versioned_url):
    app = make_app(
        [ORDER],
        Migration(
            [
                "migrations.RunPython(touch, migrations.RunPython.noop)",
            ],
            extra=(
                "def touch(apps, schema_editor):\n"
                "    Order = apps.get_model('{label}', 'Order')\n"
                "    Order.objects.update(qty=1)\n"
            ),
        ),
    )
    path = app.path / "migrations" / f"{app.names[1]}.py"
    path.write_text(path.read_text().replace("{label}", app.label))
    report = app.audit(database_url=versioned_url)
    seen = trace_of(report)
    table = f"{app.label}_order"
    assert modes(seen, table) == {"RowExclusiveLock"}
    assert table in seen.scanned


def test_only_relations_that_existed_before_the_change_count(make_app, versioned_url):
    app = make_app(
        [ORDER],
        [
            "migrations.CreateModel('Line', [('id', models.BigAutoField(primary_key=True)), "
            "('n', models.IntegerField())])",
            "migrations.AddIndex('line', models.Index(fields=['n'], name='line_n_ix'))",
        ],
    )
    report = app.audit(database_url=versioned_url)
    (result,) = report.migrations
    assert all(f"{app.label}_line" not in str(seen.locks) for seen in result.trace)
    assert not [f for f in report.findings if f.severity.value == "error"]


def test_no_trace_records_nothing(make_app, pg_url):
    app = make_app(
        [ORDER],
        ["migrations.AddIndex('order', models.Index(fields=['created'], name='order_c_ix'))"],
    )
    report = app.audit(database_url=pg_url, trace=False)
    (result,) = report.migrations
    assert result.trace == ()
    assert report.traced is False
    assert all(f.evidence.value == "predicted" for f in report.findings)


def test_tracing_does_not_change_what_a_non_atomic_migration_does(make_app, pg_url):
    """LOCK TABLE outside a transaction fails in production; it must fail when traced too."""
    app = make_app(
        [ORDER],
        Migration(
            ["migrations.RunSQL('LOCK TABLE {t}_order', migrations.RunSQL.noop)"], atomic=False
        ),
    )
    path = app.path / "migrations" / f"{app.names[1]}.py"
    path.write_text(path.read_text().replace("{t}", app.label))
    traced = app.audit(database_url=pg_url)
    untraced = app.audit(database_url=pg_url, trace=False)
    for report in (traced, untraced):
        (result,) = report.migrations
        assert result.status == "failed"
        assert "LOCK TABLE can only be used in transaction blocks" in (result.error or "")


def test_vacuum_full_in_a_non_atomic_migration_is_seen_rewriting(make_app, pg_url):
    app = make_app(
        [ORDER],
        Migration(
            ["migrations.RunSQL('VACUUM FULL {t}_order', migrations.RunSQL.noop)"], atomic=False
        ),
    )
    path = app.path / "migrations" / f"{app.names[1]}.py"
    path.write_text(path.read_text().replace("{t}", app.label))
    report = app.audit(database_url=pg_url)
    seen = trace_of(report)
    table = f"{app.label}_order"
    assert seen.method == "sampled"
    assert table in seen.rewritten
    assert "AccessExclusiveLock" in modes(seen, table)
    (finding,) = app.findings(report, "vacuum-full")
    assert finding.evidence.value == "observed"


def test_brief_lock_advice_is_quiet_when_the_migration_sets_lock_timeout(make_app, pg_url):
    app = make_app(
        [ORDER],
        [
            "migrations.RunSQL(\"SET LOCAL lock_timeout = '5s'\", migrations.RunSQL.noop)",
            "migrations.AddField('order', 'note', models.TextField(null=True))",
        ],
    )
    report = app.audit(database_url=pg_url)
    assert app.findings(report, "lock-timeout-missing") == []
    bare = make_app([ORDER], ["migrations.AddField('order', 'note', models.TextField(null=True))"])
    assert app.findings(bare.audit(database_url=pg_url), "lock-timeout-missing")


def test_table_renamed_earlier_in_the_migration_is_still_an_existing_table(make_app, pg_url):
    app = make_app(
        [ORDER],
        [
            "migrations.RenameModel('Order', 'Purchase')",
            "migrations.AlterField('purchase', 'qty', models.BigIntegerField(default=0))",
            "migrations.AddIndex('purchase', models.Index(fields=['qty'], name='purchase_q_ix'))",
        ],
    )
    report = app.audit(database_url=pg_url)
    table = f"{app.label}_purchase"
    (rewrite,) = app.findings(report, "alter-column-type-rewrite")
    assert rewrite.table == table
    assert rewrite.evidence.value == "observed"
    assert table in rewrite.rewritten
    (index,) = app.findings(report, "add-index-non-concurrent")
    assert index.table == table


# --- the tracer's shortcut: statements it does not query after ---------------------------

PRE_EXISTING = """
CREATE TABLE shop (id bigint PRIMARY KEY, name text);
CREATE TABLE part (id bigint PRIMARY KEY, n int) PARTITION BY RANGE (id);
CREATE TYPE mood AS (a int);
INSERT INTO shop VALUES (1, 'a');
"""

#: (statement, may the tracer answer without the query?)
STATEMENTS = [
    ("CREATE TABLE bare (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)", True),
    ('CREATE INDEX "bare_n_ix" ON "bare" ("n")', True),
    ("CREATE UNIQUE INDEX bare_n_uq ON bare (n) WHERE n > 0", True),
    ("CREATE TABLE ref (id bigint PRIMARY KEY, shop_id bigint REFERENCES shop (id))", False),
    ("CREATE TABLE copy (LIKE shop INCLUDING ALL)", False),
    ("CREATE TABLE kid () INHERITS (shop)", False),
    ("CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (10)", False),
    ("CREATE TABLE typed OF mood", False),
    ("CREATE TABLE shop_copy AS SELECT * FROM shop", False),
    ("CREATE INDEX shop_name_ix ON shop (name)", False),
    ("SELECT count(*) FROM shop", None),  # an unobserved statement...
    ("CREATE INDEX ref_shop_ix ON ref (shop_id)", False),  # ...so the next one is read
    ("CREATE INDEX ref_id_ix ON ref (id)", True),
]


class _Connection:
    """What the tracer asks of Django's connection, over a psycopg connection."""

    def __init__(self, raw):
        self.connection = raw
        self.in_atomic_block = True

    def ensure_connection(self):
        pass


@pytest.mark.parametrize("server", ["session", "embedded"])
def test_statements_answered_without_the_query_read_what_the_query_reads(request, server):
    """Whatever the tracer answers without its query after a statement equals what the
    query reads, on two major versions: a bare CREATE TABLE, an index on a table the
    change created; anything naming a relation that existed before, or following a
    statement nobody observed, is read."""
    pg = request.getfixturevalue("pg_server" if server == "session" else "embedded_server")
    if pg is None:
        pytest.skip("no second PostgreSQL major version available")
    with contextlib.ExitStack() as stack:
        info = stack.enter_context(scratch_database(pg, purpose="tracertest"))
        raw = stack.enter_context(info.connect(autocommit=True))
        raw.execute(PRE_EXISTING)
        tracer = Tracer(info, take_snapshot(raw), fresh=True)
        stack.callback(tracer.close)
        connection = _Connection(raw)
        raw.execute("BEGIN")
        tracer.begin_migration(connection, None)
        answered = []
        for text, shortcut in STATEMENTS:
            tracer.before_statement(connection)
            raw.execute(text)
            stmt = ExecutedStatement(sql=text, op_index=0, origin=SCHEMA)
            if shortcut is None:
                continue
            without_query = not tracer.wants_observation(stmt, None)
            assert without_query is shortcut, text
            if shortcut:
                answered.append(text)
                read = tracer.observe(connection)
                assert read == stmt.observation, text
            else:
                stmt.observation = tracer.observe(connection)
        raw.execute("ROLLBACK")
    assert len(answered) == 4


def test_the_collector_is_given_back_as_the_audit_found_it(make_app, pg_url, monkeypatch):
    """The audit spares the garbage collector while it applies a history
    (engine.fewer_collections); an in-process caller gets its own settings back."""
    app = make_app([ORDER], ["migrations.AddField('order', 'note', models.TextField(null=True))"])
    before = gc.get_threshold()
    gc.set_threshold(900, 7, 9)
    try:
        frozen = gc.get_freeze_count()
        seen = []
        original = engine._Run.execute

        def execute(self, *args, **kwargs):
            seen.append((gc.get_threshold(), gc.get_freeze_count()))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(engine._Run, "execute", execute)
        report = app.audit(database_url=pg_url)
        assert report.migrations[0].status == "audited"
        (during,) = seen
        assert during[0] == (900, 7, 9) and during[1] > frozen
        assert gc.get_threshold() == (900, 7, 9)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.set_threshold(*before)
