# plan_zero_downtime shop: release 1 of 2, migration 4 of 4 in this release (switch).
#
# Switch Django to shop_order.internal_notes.
#   Django's state moves to internal_notes here, and internal_notes becomes NOT NULL
#   (no scan: the CHECK is validated; ACCESS EXCLUSIVE for milliseconds). The trigger
#   keeps notes up to date for the previous release until the next release drops it.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.
#
# Release 2 is pending (shop/migrations/zero_downtime_plan.json): once this release is
# deployed everywhere, run `python manage.py plan_zero_downtime shop` to write it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0028_validate_order_notes_copy'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # Only internal_notes changes: the trigger keeps both columns in step.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='order',
                    name='notes',
                    field=models.TextField(blank=True, db_column='internal_notes'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'ALTER TABLE "shop_order" ALTER COLUMN "internal_notes" SET NOT NULL',
                        'ALTER TABLE "shop_order" DROP CONSTRAINT "shop_order_internal_notes_not_null"',
                    ],
                    reverse_sql=[
                        'ALTER TABLE "shop_order" ALTER COLUMN "internal_notes" DROP NOT NULL',
                        'ALTER TABLE "shop_order" ADD CONSTRAINT "shop_order_internal_notes_not_null" CHECK ("internal_notes" IS NOT NULL) NOT VALID',
                    ],
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
