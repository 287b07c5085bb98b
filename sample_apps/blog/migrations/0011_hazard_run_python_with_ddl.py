"""HAZARD run-python-with-ddl: AddField and a RunPython backfill in the same (atomic) migration.

The ACCESS EXCLUSIVE lock taken by ADD COLUMN on blog_post is held until the transaction
commits, i.e. for the whole backfill: blog_post is unreadable while every row is updated.
"""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_approved_comments(apps, schema_editor):
    Post = apps.get_model("blog", "Post")
    Comment = apps.get_model("blog", "Comment")
    approved = (
        Comment.objects.filter(post=OuterRef("pk"), is_approved=True)
        .order_by()
        .values("post")
        .annotate(total=Count("pk"))
        .values("total")
    )
    Post.objects.using(schema_editor.connection.alias).update(
        comment_count=Coalesce(Subquery(approved), 0)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0010_safe_set_not_null_validate"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="comment_count",
            field=models.IntegerField(blank=True, editable=False, null=True),
        ),
        # Unapplying drops the column anyway: nothing to undo in the data.
        migrations.RunPython(count_approved_comments, migrations.RunPython.noop),
    ]
