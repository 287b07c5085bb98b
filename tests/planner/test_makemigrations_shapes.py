"""What makemigrations really writes (issue 12, item 2), planned and verified on rows.

Answering makemigrations' prompt for a new NOT NULL field writes
``AddField(..., default=<answer>, preserve_default=False)``: the model has no
default, the migration has a one-off one. Here on every kind of field at once,
a ForeignKey to the swappable user model (given as a string until rendered:
this crashed the planner) and an ``auto_now`` field (no default at all)
included; the plan runs with its own verification (a fresh process, rows of
the previous release, the audit). Then the shapes of
a history: a squashed migration (refused, saying why), a merge migration
(nothing to plan), a unique field with one default for every row (refused).
"""

from __future__ import annotations

import django
import pytest

from .helpers import plan

MODEL_FIELDS = """\
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edited_posts"
    )
    rank = models.IntegerField()
    featured = models.BooleanField()
    price = models.DecimalField(max_digits=8, decimal_places=2)
    first_seen = models.DateTimeField(auto_now_add=True)
    uid = models.UUIDField()
    meta = models.JSONField()
    changed_at = models.DateTimeField(auto_now=True)
"""
ONE_OFF = """\
import django.db.models.deletion
import django.utils.timezone
import uuid
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0019_hazard_update_without_where'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='post',
            name='editor',
            field=models.ForeignKey(default=1, on_delete=django.db.models.deletion.CASCADE, related_name='edited_posts', to=settings.AUTH_USER_MODEL),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='rank',
            field=models.IntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='featured',
            field=models.BooleanField(default=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='price',
            field=models.DecimalField(decimal_places=2, default=Decimal('0'), max_digits=8),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='first_seen',
            field=models.DateTimeField(auto_now_add=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='uid',
            field=models.UUIDField(default=uuid.uuid4),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='meta',
            field=models.JSONField(default=dict),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='post',
            name='changed_at',
            field=models.DateTimeField(auto_now=True),
        ),
    ]
"""  # noqa: E501 (makemigrations writes long lines)


@pytest.fixture(scope="module")
def one_off(project_factory):
    project = project_factory("oneoff")
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n" + MODEL_FIELDS,
    )
    (project.root / "blog/migrations/0020_post_one_off_defaults.py").write_text(ONE_OFF)
    written, output = plan(project, "blog", "0020_post_one_off_defaults")
    return project, written, output


def test_one_off_defaults_of_every_kind_are_planned_and_verified(one_off):
    project, written, output = one_off
    assert "Verified on PostgreSQL" in output, output
    assert "with every value kept; the previous release's" in output
    text = "".join(project.read(f"blog/migrations/{name}.py") for name in written)
    # the foreign key given as a string: its one-off default, its constraint NOT VALID
    assert '"editor_id" bigint DEFAULT 1 NOT NULL' in text
    assert 'FOREIGN KEY ("editor_id") REFERENCES "accounts_user" ("id")' in text
    # callables PostgreSQL computes: set-based; dict: in Python, the one-off callable kept
    assert "assignment='\"uid\" = gen_random_uuid()'" in text
    assert "assignment='\"first_seen\" = now()'" in text
    assert "backfill_in_python(rows, 'meta', dict)" in text
    # auto_now without a default (Django gives existing rows the time of the migration and
    # drops the DEFAULT: the previous release's INSERTs then failed): backfilled, now()
    assert "assignment='\"changed_at\" = now()'" in text
    assert not (project.root / "blog/migrations/0020_post_one_off_defaults.py").exists()


def test_a_unique_field_with_one_default_for_every_row_is_refused(project_factory):
    project = project_factory("uniqueoneoff")
    project.edit(
        "blog/models.py",
        "    view_count = models.IntegerField(default=0)\n",
        "    view_count = models.IntegerField(default=0)\n"
        "    code = models.CharField(max_length=20, unique=True, default='x')\n",
    )
    proc = project.plan("blog", "--no-verify", expect=2)
    assert "post.code is unique" in proc.stderr
    assert "one default for every existing row" in proc.stderr
    assert project.migrations("blog")[-1] == "0019_hazard_update_without_where"


def test_a_squashed_migration_is_refused_with_the_reason(project_factory):
    project = project_factory("squashed")
    project.manage(
        "squashmigrations",
        "blog",
        "0018",
        "0019",
        "--noinput",
        "--squashed-name",
        "late",
        database=project.database(),
    )
    proc = project.plan("blog", "0018_late", "--no-verify", expect=2)
    assert "is a squashed migration" in proc.stderr
    assert "Traceback" not in proc.stderr


MERGE_LEAF = """\
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0019_hazard_update_without_where'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='{model}',
            index=models.Index(fields=['{field}'], name='{name}'),
        ),
    ]
"""
MERGE = """\
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0020_post_index'),
        ('blog', '0020_tag_index'),
    ]

    operations = [
    ]
"""


@pytest.mark.skipif(django.VERSION < (4, 2), reason="Django 4.2+")
def test_merge_migrations(project_factory):
    """A merge migration has nothing to plan; a branch before it is planned and rewired."""
    project = project_factory("merge")
    migrations_dir = project.root / "blog/migrations"
    (migrations_dir / "0020_post_index.py").write_text(
        MERGE_LEAF.format(model="post", field="title", name="blog_post_title_idx")
    )
    (migrations_dir / "0020_tag_index.py").write_text(
        MERGE_LEAF.format(model="tag", field="slug", name="blog_tag_slug_idx")
    )
    (migrations_dir / "0021_merge.py").write_text(MERGE)
    project.edit(
        "blog/models.py",
        '        unique_together = [("author", "slug")]\n',
        '        unique_together = [("author", "slug")]\n'
        '        indexes = [models.Index(fields=["title"], name="blog_post_title_idx")]\n',
    )
    project.edit(
        "blog/models.py",
        '        ordering = ["name"]\n',
        '        ordering = ["name"]\n'
        '        indexes = [models.Index(fields=["slug"], name="blog_tag_slug_idx")]\n',
    )
    nothing = project.plan("blog", "0021_merge", "--no-verify")
    assert "Nothing to plan" in nothing.stdout or "No changes" in nothing.stdout
    written, output = plan(project, "blog", "0020_post_index")
    assert "Verified on PostgreSQL" in output, output
    assert "CONCURRENTLY IF NOT EXISTS" in project.read(f"blog/migrations/{written[0]}.py")
    assert f"('blog', '{written[-1]}')" in project.read("blog/migrations/0021_merge.py")
