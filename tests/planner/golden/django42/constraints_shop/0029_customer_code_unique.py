# plan_zero_downtime shop: release 1, migration 4 of 8 in this release (enforce).
#
# ADD CONSTRAINT shop_customer_code_a46664c8_uniq UNIQUE USING INDEX on shop_customer.
#   ADD CONSTRAINT ... UNIQUE USING INDEX turns the index built by the previous
#   migration into the constraint: catalog-only, ACCESS EXCLUSIVE on shop_customer for
#   milliseconds, no scan and no build.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0028_customer_code_unique_index_and_more'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "shop_customer" ADD CONSTRAINT "shop_customer_code_a46664c8_uniq" UNIQUE USING INDEX "shop_customer_code_a46664c8_uniq"',
            reverse_sql='ALTER TABLE "shop_customer" DROP CONSTRAINT "shop_customer_code_a46664c8_uniq"',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
