"""Type changes on real rows (issue 12, items 1 and 6).

Item 1: ``max_length`` 150 -> 100. An explicit cast truncates in PostgreSQL; the
plan must instead stop with PostgreSQL's error, as Django's AlterField would,
and no reverse may overwrite a value the forward steps did not write.

Item 6: the column swap changes the type of a column under running code, which
breaks server-side prepared statements; ``--no-column-swap`` keeps every
column's type for the code that uses it.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import pytest

from .helpers import plan

LAST_SHOP = "0025_hazard_run_sql_no_reverse"
FITS = "x" * 100
MULTIBYTE = "é漢😀ß" * 25  # 100 characters, 325 bytes
TOO_LONG = "é" * 150
FIRST = "(SELECT min(id) FROM shop_customer)"
LAST = "(SELECT max(id) FROM shop_customer)"


def connect(project, database: str) -> psycopg.Connection[Any]:
    name = next(n for n in project.databases if f"/{n}?" in database or database.endswith(n))
    return project.server.info.with_dbname(name).connect(autocommit=True)


def rows(project, database: str, sql: str) -> list[tuple[Any, ...]]:
    with connect(project, database) as conn:
        return conn.execute(sql).fetchall()


def names(project, database: str) -> dict[int, str]:
    return dict(rows(project, database, "SELECT id, full_name FROM shop_customer ORDER BY id"))


@pytest.fixture(scope="module")
def narrowing(project_factory):
    project = project_factory("narrowing")
    project.edit(
        "shop/models.py",
        "    full_name = models.CharField(max_length=150)\n",
        "    full_name = models.CharField(max_length=100)\n",
    )
    written, output = plan(project, "shop", "--no-verify")
    return project, written, output


def test_the_plan_checks_that_values_fit_before_copying(narrowing):
    _project, written, output = narrowing
    assert [w.split("_", 1)[1] for w in written] == [
        "expand_customer_full_name",
        "validate_customer_full_name_fits",
        "copy_customer_full_name",
        "validate_customer_full_name_copy",
        "switch_customer_full_name",
    ]
    assert "Validate that every shop_customer.full_name fits varchar(100)" in output


def test_a_value_that_does_not_fit_stops_the_migration_uncut(narrowing):
    """Before: the copy cast it to varchar(100), silently cutting 50 characters."""
    project, written, _ = narrowing
    database = project.database()
    project.sql(
        database,
        f"UPDATE shop_customer SET full_name = '{TOO_LONG}' WHERE id = {FIRST}",
    )
    proc = project.manage("migrate", "shop", written[-1], database=database, expect=1)
    assert 'check constraint "shop_customer_full_name_fits"' in proc.stderr
    assert "is violated by some row" in proc.stderr
    assert TOO_LONG in names(project, database).values()  # not one character lost
    applied = rows(
        project, database, "SELECT name FROM django_migrations WHERE app = 'shop' ORDER BY id"
    )
    assert (written[0],) in applied and (written[2],) not in applied  # nothing was copied


def test_every_value_survives_forward_back_and_forward(narrowing):
    project, written, _ = narrowing
    database = project.database()
    project.sql(
        database,
        f"UPDATE shop_customer SET full_name = '{FITS}' WHERE id = {FIRST}",
        f"UPDATE shop_customer SET full_name = '{MULTIBYTE}' WHERE id = {LAST}",
    )
    original = names(project, database)
    assert FITS in original.values() and MULTIBYTE in original.values()
    project.manage("migrate", "shop", written[-1], database=database)
    assert names(project, database) == original
    project.manage("migrate", "shop", LAST_SHOP, database=database)
    assert names(project, database) == original
    project.manage("migrate", "shop", written[-1], database=database)
    assert names(project, database) == original


def test_migrating_back_writes_only_rows_written_since_the_switch(narrowing):
    """The switch's reverse copies back what the new release wrote, and nothing else."""
    project, written, _ = narrowing
    database = project.database()
    project.manage("migrate", "shop", written[-1], database=database)
    original = names(project, database)
    changed = min(original)
    project.sql(
        database, f"UPDATE shop_customer SET full_name = 'new release' WHERE id = {changed}"
    )
    versions = dict(rows(project, database, "SELECT id, xmin::text FROM shop_customer"))
    project.manage("migrate", "shop", LAST_SHOP, database=database)
    after = names(project, database)
    assert after == {**original, changed: "new release"}
    rewritten = {
        key
        for key, version in rows(project, database, "SELECT id, xmin::text FROM shop_customer")
        if versions[key] != version
    }
    assert rewritten == {changed}


# -- item 6: server-side prepared statements across the switch -------------------------------


@pytest.fixture(scope="module", params=["swap", "no-swap"])
def stock(project_factory, request):
    project = project_factory(f"stock_{request.param}")
    project.edit(
        "shop/models.py",
        "    stock = models.IntegerField(default=0)\n",
        "    stock = models.BigIntegerField(default=0)\n",
    )
    args = ["--no-verify"] + (["--no-column-swap"] if request.param == "no-swap" else [])
    written, output = plan(project, "shop", *args)
    return request.param, project, written, output


def test_prepared_statements_across_the_switch(stock):
    """The previous release's server-side prepared SELECT (psycopg 3 prepare=True, JDBC...)
    fails once the swap changes its column's type; without the swap it keeps working."""
    variant, project, written, _ = stock
    database = project.database()
    project.manage("migrate", "shop", written[-2], database=database)  # all but the switch
    with connect(project, database) as conn:
        query = "SELECT stock FROM shop_product WHERE id = %s"
        key = conn.execute("SELECT min(id) FROM shop_product").fetchone()[0]
        for _ in range(2):
            conn.execute(query, (key,), prepare=True)
        project.manage("migrate", "shop", written[-1], database=database)
        if variant == "swap":
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="cached plan must not"):
                conn.execute(query, (key,), prepare=True)
        else:
            assert conn.execute(query, (key,), prepare=True).fetchone() is not None
            # and the previous release's writes still reach the new column
            conn.execute("UPDATE shop_product SET stock = 42 WHERE id = %s", (key,))
            assert conn.execute(
                "SELECT stock__new FROM shop_product WHERE id = %s", (key,)
            ).fetchone() == (42,)


def test_the_swap_free_variant_moves_the_model_to_the_new_column(stock):
    variant, project, _written, output = stock
    models_py = project.read("shop/models.py")
    if variant == "swap":
        assert "stock = models.BigIntegerField(default=0)\n" in models_py
        assert "(the columns swap names)" in output
        return
    assert 'stock = models.BigIntegerField(default=0, db_column="stock__new")' in models_py
    assert "(the model moves to stock__new)" in output
    proc = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "shop", "--check", "--dry-run"],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
