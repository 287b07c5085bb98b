"""SAFE counterpart of run-python-with-ddl, step 2 of 2: the backfill alone, in small batches.

``atomic = False`` and one short transaction per batch of primary keys: row locks on
blog_post are held for one batch at a time and no DDL lock is held at all.
"""

from django.db import migrations, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest

BATCH_SIZE = 500
WORDS_PER_MINUTE = 200


def backfill_reading_time(apps, schema_editor):
    Post = apps.get_model("blog", "Post")
    db = schema_editor.connection.alias
    last_pk = 0
    while True:
        with transaction.atomic(using=db):
            pks = list(
                Post.objects.using(db)
                .filter(pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", flat=True)[:BATCH_SIZE]
            )
            if not pks:
                return
            Post.objects.using(db).filter(
                pk__in=pks, reading_time_minutes__isnull=True
            ).update(
                reading_time_minutes=Greatest(
                    Value(1), (F("word_count") + WORDS_PER_MINUTE - 1) / WORDS_PER_MINUTE
                )
            )
        last_pk = pks[-1]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("blog", "0012_safe_add_nullable_column"),
    ]

    operations = [
        # Reversible as a no-op: unapplying 0012 drops the backfilled column.
        migrations.RunPython(backfill_reading_time, migrations.RunPython.noop),
    ]
