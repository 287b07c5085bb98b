# plan_zero_downtime shop: release 1 of 2, migration 1 of 4 in this release (expand).
#
# Add shop_order.internal_notes, kept in step with notes by a trigger.
#   shop_order.notes is renamed internal_notes: RENAME COLUMN would break the previous
#   release at once (its queries name notes). Expand/contract instead, step 1:
#   internal_notes is added nullable (catalog-only) and a trigger copies between the
#   two columns on every INSERT and UPDATE, both ways: the previous release writes
#   notes, this release writes internal_notes. CHECK (internal_notes IS NOT NULL) NOT
#   VALID holds new rows to it without a scan.
#
# Rename the table shop_orderitem to shop_order_line, with a view named
# shop_orderitem.
#   shop_orderitem is renamed shop_order_line (catalog-only, ACCESS EXCLUSIVE for
#   milliseconds) and a view named shop_orderitem takes its place for the previous
#   release: a simple SELECT * view is automatically updatable, so that release's
#   SELECT, INSERT, UPDATE and DELETE keep working through it. Django's state gets the
#   new table name here.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0025_hazard_run_sql_no_reverse'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql=[
                'ALTER TABLE "shop_order" ADD COLUMN "internal_notes" text NULL',
                'CREATE FUNCTION "shop_order_internal_notes_sync"() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  IF TG_OP = \'INSERT\' THEN\n    IF NEW."internal_notes" IS NULL THEN NEW."internal_notes" := NEW."notes";\n    ELSIF NEW."notes" IS NULL THEN NEW."notes" := NEW."internal_notes";\n    END IF;\n  ELSIF NEW."internal_notes" IS DISTINCT FROM OLD."internal_notes" THEN\n    NEW."notes" := NEW."internal_notes";\n  ELSIF NEW."notes" IS DISTINCT FROM OLD."notes" THEN\n    NEW."internal_notes" := NEW."notes";\n  END IF;\n  RETURN NEW;\nEND\n$$',
                'CREATE TRIGGER "shop_order_internal_notes_sync" BEFORE INSERT OR UPDATE ON "shop_order" FOR EACH ROW EXECUTE FUNCTION "shop_order_internal_notes_sync"()',
                'ALTER TABLE "shop_order" ADD CONSTRAINT "shop_order_internal_notes_not_null" CHECK ("internal_notes" IS NOT NULL) NOT VALID',
            ],
            reverse_sql=[
                'DROP TRIGGER IF EXISTS "shop_order_internal_notes_sync" ON "shop_order"',
                'DROP FUNCTION IF EXISTS "shop_order_internal_notes_sync"()',
                'ALTER TABLE "shop_order" DROP COLUMN IF EXISTS "internal_notes"',
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelTable(
                    name='orderitem',
                    table='shop_order_line',
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'ALTER TABLE "shop_orderitem" RENAME TO "shop_order_line"',
                        'CREATE VIEW "shop_orderitem" AS SELECT * FROM "shop_order_line"',
                    ],
                    reverse_sql=[
                        'DROP VIEW IF EXISTS "shop_orderitem"',
                        'ALTER TABLE "shop_order_line" RENAME TO "shop_orderitem"',
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
