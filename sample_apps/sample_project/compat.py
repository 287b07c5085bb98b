"""Small helpers that keep the sample models and migrations valid on every
supported Django version (4.2 LTS, 5.2 LTS and 6.0)."""

import django
from django.db import models


def check_constraint(q, name):
    """Build a ``CheckConstraint`` for ``q`` named ``name``.

    Django 5.1 renamed the ``check`` argument to ``condition`` and Django 6.0
    removed ``check``; pick the keyword the running Django understands.
    """
    keyword = "condition" if django.VERSION >= (5, 1) else "check"
    return models.CheckConstraint(name=name, **{keyword: q})
