"""The analytics app's table, created in the ``analytics`` database (the router says so)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="PageView",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("path", models.CharField(max_length=255)),
                ("viewed_at", models.DateTimeField()),
                ("user_id", models.BigIntegerField(null=True)),
            ],
        ),
    ]
