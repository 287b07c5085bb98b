"""Type changes that rewrite, renames and removals: the strategies that span two releases.

Autodetector input for each; the migration input of the same patterns is in
``test_replaced_history`` (the sample's own hazard migrations, replaced).
"""

from __future__ import annotations

import pytest

from .conftest import assert_golden, assert_proven
from .helpers import Scenario, collect_files, plan

LAST_SHOP = "0025_hazard_run_sql_no_reverse"
LAST_BLOG = "0019_hazard_update_without_where"

COLUMNS = (
    "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
    "WHERE table_name = '{}' AND column_name LIKE '{}%' ORDER BY column_name"
)
OLD_PRODUCT_INSERT = (
    "INSERT INTO shop_product (sku, name, description, price, stock, is_active, created_at, "
    "updated_at) VALUES ('OLD-{n}', 'old release', '', 1, 7, true, now(), now())"
)


# -- type change --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def type_change(project_factory):
    project = project_factory("typechange")
    project.edit(
        "shop/models.py",
        "    stock = models.IntegerField(default=0)\n",
        "    stock = models.BigIntegerField(default=0)\n",
    )
    # varchar widening is binary-coercible: it stays a plain AlterField
    project.edit(
        "shop/models.py",
        "    full_name = models.CharField(max_length=150)\n",
        "    full_name = models.CharField(max_length=200)\n",
    )
    written, output = plan(project, "shop", "--no-verify")
    first = Scenario(project, "shop", written, output, collect_files(project, "shop", written))
    first.proof = project.check(
        "shop",
        written=written,
        back=LAST_SHOP,
        probes=[OLD_PRODUCT_INSERT.format(n=1)],
        facts=[
            COLUMNS.format("shop_product", "stock"),
            "SELECT stock FROM shop_product WHERE sku = 'OLD-1'",
            "SELECT count(*) FROM shop_product WHERE stock IS DISTINCT FROM stock__old",
        ],
        tables=["shop_product"],
    )
    written2, output2 = plan(project, "shop", "--no-verify")
    second = Scenario(project, "shop", written2, output2, collect_files(project, "shop", written2))
    second.proof = project.check(
        "shop",
        written=written2,
        back=written[-1],
        probes=[OLD_PRODUCT_INSERT.format(n=2)],
        facts=[COLUMNS.format("shop_product", "stock")],
        tables=["shop_product"],
    )
    return first, second


def test_type_change_release_1(type_change):
    first, _ = type_change
    assert_golden("type_change_release_1", first.files)
    assert first.written == [
        "0026_alter_customer_full_name_and_expand_product_stock",
        "0027_copy_product_stock",
        "0028_validate_product_stock_copy",
        "0029_switch_product_stock",
    ]
    assert_proven(first.proof)
    columns, old_row, differing = first.proof["facts"]
    assert columns == [["stock", "bigint", "NO"], ["stock__old", "integer", "YES"]]
    assert old_row == [[7]]  # the previous release's INSERT, through the trigger
    assert differing == [[1]]  # only the row written after the switch


def test_type_change_release_2(type_change):
    _, second = type_change
    assert_golden("type_change_release_2", second.files)
    assert second.written == ["0030_drop_product_stock__old"]
    assert_proven(second.proof)
    assert second.proof["facts"][0] == [["stock", "bigint", "NO"]]


# -- renames --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renames(project_factory):
    project = project_factory("renames")
    # a field renamed (same definition: the autodetector takes it for a rename)
    project.edit(
        "blog/models.py",
        "    summary = models.TextField(blank=True)\n",
        "    abstract = models.TextField(blank=True)\n",
    )
    project.edit("blog/admin.py", '"title", "summary"', '"title", "abstract"')
    # a model renamed (another one: Django sees one rename at a time per model)
    project.edit("blog/models.py", "class Comment(models.Model):", "class Remark(models.Model):")
    project.edit("blog/admin.py", "Comment", "Remark", count=10)
    # a table renamed, a column renamed
    project.edit(
        "shop/models.py",
        '        ordering = ["id"]\n',
        '        ordering = ["id"]\n        db_table = "shop_order_line"\n',
    )
    project.edit(
        "shop/models.py",
        "    notes = models.TextField(blank=True)\n",
        '    notes = models.TextField(blank=True, db_column="internal_notes")\n',
    )
    blog, blog_output = plan(project, "blog", "--no-verify")
    shop, shop_output = plan(project, "shop", "--no-verify")
    blog_scenario = Scenario(
        project, "blog", blog, blog_output, collect_files(project, "blog", blog)
    )
    shop_scenario = Scenario(
        project, "shop", shop, shop_output, collect_files(project, "shop", shop)
    )
    blog_scenario.proof = project.check(
        "blog",
        written=blog,
        back=LAST_BLOG,
        probes=[
            # the previous release still names blog_comment and blog_post.summary
            "INSERT INTO blog_comment (post_id, author_name, content, is_approved, created_at) "
            "VALUES ((SELECT min(id) FROM blog_post), 'old release', 'hi', false, now())",
            "UPDATE blog_post SET summary = 'old release' WHERE id = (SELECT min(id) FROM blog_post)",  # noqa: E501
        ],
        tables=["blog_comment", "blog_post"],
    )
    database = project.database()
    shop_scenario.proof = project.check(
        "shop",
        written=shop,
        back=LAST_SHOP,
        database=database,
        probes=[
            # the previous release still uses the old table name and the old column
            "INSERT INTO shop_orderitem (order_id, product_id, quantity, unit_price) "
            "SELECT min(o.id), max(p.id), 2, 3 FROM shop_order o, shop_product p",
            "UPDATE shop_order SET notes = 'old release' WHERE id = (SELECT min(id) FROM shop_order)",  # noqa: E501
        ],
        facts=[
            "SELECT count(*) FROM shop_orderitem",
            "SELECT count(*) FROM shop_order WHERE internal_notes = 'old release'",
        ],
        tables=["shop_orderitem", "shop_order"],
    )
    shop2, shop2_output = plan(project, "shop", "--no-verify")
    shop2_scenario = Scenario(
        project, "shop", shop2, shop2_output, collect_files(project, "shop", shop2)
    )
    shop2_scenario.proof = project.check(
        "shop", written=shop2, back=shop[-1], tables=["shop_order_line", "shop_order"]
    )
    return blog_scenario, shop_scenario, shop2_scenario


def test_state_only_renames(renames):
    blog, _, _ = renames
    assert_golden("rename_state_only", blog.files)
    diff = blog.files["models.diff"]
    assert 'abstract = models.TextField(blank=True, db_column="summary")' in diff
    assert 'db_table = "blog_comment"' in diff
    assert "database_operations=[]" in blog.files[f"{blog.written[0]}.py"]
    assert_proven(blog.proof)


def test_table_and_column_renames(renames):
    _, shop, _ = renames
    assert_golden("rename_table_and_column", shop.files)
    assert "rename-table-with-view" in shop.output
    assert "rename-column-expand-contract" in shop.output
    assert_proven(shop.proof)
    items, notes = shop.proof["facts"]
    assert items[0][0] > 6  # the INSERT through the view landed in shop_order_line
    assert notes == [[1]]  # the previous release's write reached the new column


def test_renames_release_2(renames):
    *_, shop2 = renames
    assert_golden("rename_release_2", shop2.files)
    assert_proven(shop2.proof)


# -- removals -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def removals(project_factory):
    project = project_factory("removals")
    project.edit("blog/models.py", "    view_count = models.IntegerField(default=0)\n", "")
    project.edit(
        "blog/models.py",
        "    author = models.ForeignKey(\n"
        "        settings.AUTH_USER_MODEL,\n"
        "        on_delete=models.SET_NULL,\n"
        "        null=True,\n"
        "        blank=True,\n"
        '        related_name="comments",\n'
        "    )\n",
        "",
    )
    text = project.read("blog/models.py")
    start = text.index("class Series(models.Model):")
    end = text.index("class Comment(models.Model):")
    (project.root / "blog/models.py").write_text(text[:start] + text[end:])
    project.edit("blog/admin.py", "Comment, Post, Series, Tag", "Comment, Post, Tag")
    admin = project.read("blog/admin.py")
    start = admin.index("@admin.register(Series)")
    end = admin.index("@admin.register(Comment)")
    (project.root / "blog/admin.py").write_text(admin[:start] + admin[end:])
    project.edit("blog/admin.py", 'raw_id_fields = ["post", "author"]', 'raw_id_fields = ["post"]')
    written, output = plan(project, "blog", "--no-verify")
    first = Scenario(project, "blog", written, output, collect_files(project, "blog", written))
    first.proof = project.check(
        "blog",
        written=written,
        back=LAST_BLOG,
        probes=[
            # the new release's INSERT leaves view_count out
            "INSERT INTO blog_post (author_id, title, slug, summary, body, status, word_count, "
            "created_at, updated_at) VALUES ((SELECT min(id) FROM accounts_user), 'new', "
            "'new-release', '', 'b', 'draft', 1, now(), now())",
        ],
        facts=[
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'blog_series'::regclass "
            "AND contype = 'f'",
            COLUMNS.format("blog_post", "view_count"),
        ],
        tables=["blog_post", "blog_comment", "blog_series"],
    )
    written2, output2 = plan(project, "blog", "--no-verify")
    second = Scenario(project, "blog", written2, output2, collect_files(project, "blog", written2))
    second.proof = project.check(
        "blog",
        written=written2,
        back=written[-1],
        facts=[
            "SELECT to_regclass('blog_series') IS NULL, to_regclass('blog_series_posts') IS NULL",
            COLUMNS.format("blog_post", "view_count"),
        ],
        tables=["blog_post", "blog_comment"],
    )
    return first, second


def test_removal_release_1(removals):
    first, _ = removals
    assert_golden("remove_release_1", first.files)
    assert_proven(first.proof)
    foreign_keys, view_count = first.proof["facts"]
    assert foreign_keys == [[0]]  # the kept table no longer refuses deletes of users
    assert view_count == [["view_count", "integer", "YES"]]


def test_removal_release_2(removals):
    _, second = removals
    assert_golden("remove_release_2", second.files)
    assert_proven(second.proof)
    assert second.proof["facts"] == [[[True, True]], []]


# -- the same patterns from existing migrations --------------------------------------------

RENAME_HAZARD = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0019_hazard_update_without_where"),
    ]

    operations = [
        migrations.RenameField(
            model_name="post",
            old_name="summary",
            new_name="abstract",
        ),
        migrations.RenameModel(
            old_name="Comment",
            new_name="Remark",
        ),
    ]
"""


@pytest.fixture(scope="module")
def replaced(project_factory):
    project = project_factory("expand_replaced")
    # blog: renames written by hand (makemigrations --noinput never assumes a rename)
    project.edit(
        "blog/models.py",
        "    summary = models.TextField(blank=True)\n",
        "    abstract = models.TextField(blank=True)\n",
    )
    project.edit("blog/admin.py", '"title", "summary"', '"title", "abstract"')
    project.edit("blog/models.py", "class Comment(models.Model):", "class Remark(models.Model):")
    project.edit("blog/admin.py", "Comment", "Remark", count=10)
    (project.root / "blog/migrations/0020_hazard_renames.py").write_text(RENAME_HAZARD)
    # shop: a type change and a table rename, written by makemigrations
    project.edit(
        "shop/models.py",
        "    stock = models.IntegerField(default=0)\n",
        "    stock = models.BigIntegerField(default=0)\n",
    )
    project.edit(
        "shop/models.py",
        '        ordering = ["id"]\n',
        '        ordering = ["id"]\n        db_table = "shop_order_line"\n',
    )
    project.manage("makemigrations", "shop", "--name", "hazard_type_and_table")
    blog, blog_output = plan(project, "blog", "0020_hazard_renames", "--no-verify")
    shop, shop_output = plan(project, "shop", "0026_hazard_type_and_table", "--no-verify")
    blog_scenario = Scenario(
        project, "blog", blog, blog_output, collect_files(project, "blog", blog)
    )
    shop_scenario = Scenario(
        project, "shop", shop, shop_output, collect_files(project, "shop", shop)
    )
    blog_scenario.proof = project.check(
        "blog", written=blog, back=LAST_BLOG, tables=["blog_post", "blog_comment"]
    )
    shop_scenario.proof = project.check(
        "shop",
        written=shop,
        back=LAST_SHOP,
        probes=[
            OLD_PRODUCT_INSERT.format(n=1),
            "INSERT INTO shop_orderitem (order_id, product_id, quantity, unit_price) "
            "SELECT min(o.id), max(p.id), 2, 3 FROM shop_order o, shop_product p",
        ],
        tables=["shop_product", "shop_orderitem"],
    )
    return blog_scenario, shop_scenario


def test_replaced_renames(replaced):
    blog, _ = replaced
    assert_golden("rename_replaced", blog.files)
    assert not (blog.project.root / "blog/migrations/0020_hazard_renames.py").exists()
    assert "rename-state-only" in blog.output
    assert_proven(blog.proof)


def test_replaced_type_change_and_table_rename(replaced):
    _, shop = replaced
    assert_golden("type_and_table_replaced", shop.files)
    assert "type-change-expand-contract" in shop.output
    assert "rename-table-with-view" in shop.output
    assert_proven(shop.proof)
