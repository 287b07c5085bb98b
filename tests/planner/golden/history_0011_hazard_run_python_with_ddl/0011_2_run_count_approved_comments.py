# plan_zero_downtime blog: release 1, migration 2 of 2 in this release (change).
# Replaces blog.0011_hazard_run_python_with_ddl.
#
# Unchanged: Raw Python operation.
#   Carried over unchanged from the replaced migration, in a migration of its own: a
#   data migration must not run inside the transaction of schema changes, whose locks
#   it would hold for as long as it runs.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations
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
        ('blog', '0011_1_post_comment_count'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # Unapplying drops the column anyway: nothing to undo in the data.
        migrations.RunPython(count_approved_comments, migrations.RunPython.noop),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
