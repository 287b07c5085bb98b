"""Indexes, unique constraints, foreign keys and CHECK constraints on existing tables.

One change to the shop models brings every one of them (autodetector input); a
second change, written by makemigrations first, is replaced (migration input).
"""

from __future__ import annotations

import pytest

from .conftest import assert_golden, assert_proven
from .helpers import Scenario, collect_files, plan

LAST_SHOP = "0025_hazard_run_sql_no_reverse"
LAST_BLOG = "0019_hazard_update_without_where"

INDEXES = "SELECT indexname FROM pg_indexes WHERE tablename = '{}' ORDER BY indexname"
CONSTRAINTS = (
    "SELECT conname, convalidated FROM pg_constraint "
    "WHERE conrelid = '{}'::regclass AND contype IN ('c', 'f', 'u') ORDER BY conname"
)


@pytest.fixture(scope="module")
def shop(project_factory):
    project = project_factory("constraints")
    project.edit(
        "shop/models.py",
        "    phone = models.CharField(max_length=32, blank=True)\n",
        "    phone = models.CharField(max_length=32, blank=True, db_index=True)\n"
        '    referrer = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True)\n'  # noqa: E501
        "    code = models.CharField(max_length=20, null=True, unique=True)\n"
        "    loyalty_points = models.PositiveIntegerField(null=True)\n",
    )
    project.edit(
        "shop/models.py",
        "    name = models.CharField(max_length=255)\n",
        "    name = models.CharField(max_length=255, unique=True)\n",
    )
    project.edit(
        "shop/models.py",
        "    stock = models.IntegerField(default=0)\n",
        "    stock = models.PositiveIntegerField(default=0)\n"
        "    barcode = models.CharField(max_length=40, null=True, db_index=True)\n",
    )
    project.edit(
        "shop/models.py",
        '            models.Index(fields=["status", "created_at"], name="shop_order_status_created_idx"),\n',  # noqa: E501
        '            models.Index(fields=["total"], name="shop_order_total_idx"),\n',
    )
    project.edit(
        "shop/models.py",
        '            check_constraint(models.Q(price__gte=0), name="shop_product_price_non_negative"),\n',  # noqa: E501
        '            check_constraint(models.Q(price__gte=0), name="shop_product_price_non_negative"),\n'  # noqa: E501
        '            check_constraint(models.Q(stock__lte=100000), name="shop_product_stock_max"),\n'  # noqa: E501
        '            models.UniqueConstraint(fields=["name", "price"], name="shop_product_name_price_uniq"),\n',  # noqa: E501
    )
    written, output = plan(project, "shop", "--no-verify")
    scenario = Scenario(project, "shop", written, output, collect_files(project, "shop", written))
    scenario.proof = project.check(
        "shop",
        written=written,
        back=LAST_SHOP,
        facts=[
            INDEXES.format("shop_customer"),
            CONSTRAINTS.format("shop_customer"),
            CONSTRAINTS.format("shop_product"),
            INDEXES.format("shop_order"),
        ],
        tables=["shop_customer", "shop_product", "shop_order"],
    )
    return scenario


def test_shop_plan(shop):
    assert_golden("constraints_shop", shop.files)
    for strategy in (
        "concurrent-index",
        "unique-index-first",
        "foreign-key-not-valid",
        "check-not-valid",
    ):
        assert strategy in shop.output
    # every CONCURRENTLY statement sits in a non-atomic migration, every NOT VALID is validated
    for name, text in shop.files.items():
        code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        if any("CONCURRENTLY" in line or "Concurrently(" in line for line in code):
            assert "atomic = False" in text, name


def test_shop_plan_is_proven(shop):
    assert_proven(shop.proof)
    customer_indexes, customer_constraints, product_constraints, order_indexes = shop.proof["facts"]
    names = {row[0] for row in customer_indexes}
    assert any(n.startswith("shop_customer_phone_") and n.endswith("_like") for n in names)
    assert any(n.startswith("shop_customer_code_") and n.endswith("_uniq") for n in names)
    assert any(n.startswith("shop_customer_referrer_id_") for n in names)
    # every constraint is there, validated
    assert all(valid for _name, valid in customer_constraints + product_constraints)
    constraint_names = {row[0] for row in customer_constraints + product_constraints}
    assert "shop_product_name_price_uniq" in constraint_names
    assert "shop_product_stock_max" in constraint_names
    assert "shop_customer_loyalty_points_check" in constraint_names
    assert "shop_product_stock_check" in constraint_names
    assert any(n.startswith("shop_product_name_") and n.endswith("_uniq") for n in constraint_names)
    order_names = {row[0] for row in order_indexes}
    assert "shop_order_total_idx" in order_names
    assert "shop_order_status_created_idx" not in order_names


@pytest.fixture(scope="module")
def replaced(project_factory):
    """The blog's change written by makemigrations (the hazard), then replaced."""
    project = project_factory("constraints_replaced")
    project.edit(
        "blog/models.py",
        "    slug = models.SlugField(max_length=200)\n    summary",
        "    slug = models.SlugField(max_length=200, db_index=False)\n    summary",
    )
    project.edit(
        "blog/models.py",
        "    author_name = models.CharField(max_length=100)\n",
        "    author_name = models.CharField(max_length=100, db_index=True)\n"
        "    editor = models.ForeignKey(\n"
        "        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,\n"
        '        related_name="edited_comments",\n'
        "    )\n"
        "    score = models.PositiveSmallIntegerField(null=True, unique=True)\n",
    )
    project.manage("makemigrations", "blog", "--name", "hazard_constraints")
    written, output = plan(project, "blog", "0020_hazard_constraints", "--no-verify")
    scenario = Scenario(project, "blog", written, output, collect_files(project, "blog", written))
    scenario.proof = project.check(
        "blog",
        written=written,
        back=LAST_BLOG,
        facts=[CONSTRAINTS.format("blog_comment")],
        tables=["blog_comment"],
    )
    return scenario


def test_replaced_constraints(replaced):
    assert_golden("constraints_replaced", replaced.files)
    assert_proven(replaced.proof)
    constraints = dict(replaced.proof["facts"][0])
    assert all(constraints.values())
    assert any(name.startswith("blog_comment_editor_id_") for name in constraints)


def test_constraint_added_to_an_existing_column(project_factory):
    """The sample's accounts 0013 turns on the foreign key of a column added without one:
    NOT VALID with the state, then VALIDATE in its own transaction (it was carried over)."""
    project = project_factory("fkexisting")
    written, output = plan(project, "accounts", "0013_hazard_add_foreign_key_validating")
    assert "Verified on PostgreSQL" in output, output
    assert "foreign-key-not-valid" in output
    files = collect_files(project, "accounts", written)
    assert_golden("constraints_existing_column", files)
    first, second = (files[f"{name}.py"] for name in written)
    assert "NOT VALID" in first and "migrations.AlterField(" in first
    assert "VALIDATE CONSTRAINT" in second
