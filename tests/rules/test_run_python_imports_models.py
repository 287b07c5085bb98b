"""run-python-imports-models: RunPython code using the current model classes."""

from __future__ import annotations

from migration_guard.findings import Category, Severity
from migration_guard.rules.run_python_imports_models import current_models_used

from ..harness import Migration

RULE = "run-python-imports-models"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)
MODELS = """
from django.db import models


class Order(models.Model):
    qty = models.IntegerField(null=True)

    class Meta:
        db_table = "orders"
"""
RUN = "migrations.RunPython(forwards, migrations.RunPython.noop)"


def test_module_level_import_err(make_app):
    code = """
from ..models import Order


def forwards(apps, schema_editor):
    Order.objects.filter(qty__isnull=True).update(qty=0)
"""
    app = make_app([ORDER], Migration([RUN], extra=code), models=MODELS)
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.WARNING
    assert finding.category is Category.CORRECTNESS
    assert f"{app.label}.Order" in finding.message
    assert f"apps.get_model('{app.label}', 'Order')" in finding.fix


def test_import_inside_the_function_and_helper_err(make_app):
    code = """
def _fill(qty):
    from .. import models as app_models
    app_models.Order(qty=qty).save()


def forwards(apps, schema_editor):
    _fill(1)
"""
    app = make_app([ORDER], Migration([RUN], extra=code), models=MODELS)
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def _uses_get_user_model(apps, schema_editor):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.count()


def test_get_user_model_err():
    # No audit: the test settings have no user model to install.
    assert current_models_used(_uses_get_user_model) == ["get_user_model()"]


def test_historical_model_ok(make_app):
    code = """
from ..models import Order


def forwards(apps, schema_editor):
    Order = apps.get_model(__name__.split('.')[0], 'Order')
    Order.objects.filter(qty__isnull=True).update(qty=0)
"""
    app = make_app([ORDER], Migration([RUN], extra=code), models=MODELS)
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_constants_of_the_models_module_ok(make_app):
    code = """
from .. import models as app_models


def forwards(apps, schema_editor):
    Order = apps.get_model(__name__.split('.')[0], 'Order')
    Order.objects.update(qty=app_models.DEFAULT_QTY)
"""
    app = make_app([ORDER], Migration([RUN], extra=code), models=MODELS + "\nDEFAULT_QTY = 1\n")
    report = app.audit()
    assert app.findings(report, RULE) == []
