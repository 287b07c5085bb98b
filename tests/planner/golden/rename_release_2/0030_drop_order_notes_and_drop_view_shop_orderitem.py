# plan_zero_downtime shop: release 2 of 2, migration 1 of 1 in this release
# (contract).
# Ship only after release 1
# (0026_expand_order_internal_notes_and_rename_table_shop_orderitem,
# 0027_copy_order_notes, 0028_validate_order_notes_copy,
# 0029_switch_order_internal_notes) is deployed everywhere.
#
# Drop the old column shop_order.notes.
#   No running release uses shop_order.notes any more: the trigger and the column go
#   (catalog-only, ACCESS EXCLUSIVE for milliseconds).
#
# Drop the compatibility view shop_orderitem.
#   No running release uses the name shop_orderitem any more: the compatibility view
#   goes. DROP VIEW takes ACCESS EXCLUSIVE on the view only, for milliseconds.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0029_switch_order_internal_notes'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The reverse restores the column.
        # The code left this column in the previous release (the switch): no running release uses it.
        migrations.RunSQL(
            sql=[
                'DROP TRIGGER IF EXISTS "shop_order_internal_notes_sync" ON "shop_order"',
                'DROP FUNCTION IF EXISTS "shop_order_internal_notes_sync"()',
                'ALTER TABLE "shop_order" DROP COLUMN IF EXISTS "notes"',
            ],
            reverse_sql=[
                'ALTER TABLE "shop_order" ADD COLUMN IF NOT EXISTS "notes" text NULL',
                'UPDATE "shop_order" SET "notes" = "internal_notes"',
                'CREATE FUNCTION "shop_order_internal_notes_sync"() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  IF TG_OP = \'INSERT\' THEN\n    IF NEW."internal_notes" IS NULL THEN NEW."internal_notes" := NEW."notes";\n    ELSIF NEW."notes" IS NULL THEN NEW."notes" := NEW."internal_notes";\n    END IF;\n  ELSIF NEW."internal_notes" IS DISTINCT FROM OLD."internal_notes" THEN\n    NEW."notes" := NEW."internal_notes";\n  ELSIF NEW."notes" IS DISTINCT FROM OLD."notes" THEN\n    NEW."internal_notes" := NEW."notes";\n  END IF;\n  RETURN NEW;\nEND\n$$',
                'CREATE TRIGGER "shop_order_internal_notes_sync" BEFORE INSERT OR UPDATE ON "shop_order" FOR EACH ROW EXECUTE FUNCTION "shop_order_internal_notes_sync"()',
            ],
        ),
        migrations.RunSQL(
            sql='DROP VIEW IF EXISTS "shop_orderitem"',
            reverse_sql='CREATE VIEW "shop_orderitem" AS SELECT * FROM "shop_order_line"',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
