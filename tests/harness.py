"""Throwaway Django apps for rule tests, audited for real on PostgreSQL.

A test writes migrations as lists of operation source lines::

    app = make_app(
        ["migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True))])"],
        ["migrations.AddIndex('order', models.Index(fields=['id'], name='o_idx'))"],
    )
    report = app.audit()            # the last migration, judged as the change
    assert app.rules(report) == ["add-index-non-concurrent"]

Migrations are numbered 0001, 0002... each depending on the one before. The
app is a real package on ``sys.path`` with a unique label, installed with
``override_settings`` for the duration of the audit.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.test.utils import override_settings

from migration_guard.conf import build_config
from migration_guard.discovery import Selection
from migration_guard.engine import AuditRequest, run_audit
from migration_guard.results import AuditReport

HEADER = """\
import uuid

import django.db.models.deletion
from django.db import migrations, models
{imports}
"""

TEMPLATE = """\
{header}
{extra}

class Migration(migrations.Migration):
{attributes}
    dependencies = {dependencies!r}

    operations = [
{operations}
    ]
"""


class Migration:
    """One migration's source: operations plus optional class attributes and module code."""

    def __init__(
        self,
        operations: Sequence[str],
        *,
        atomic: bool | None = None,
        extra: str = "",
        imports: str = "",
        attributes: str = "",
        dependencies: Iterable[tuple[str, str]] = (),
        name: str | None = None,
    ) -> None:
        self.operations = list(operations)
        self.atomic = atomic
        self.extra = extra
        self.imports = imports
        self.attributes = attributes
        self.dependencies = list(dependencies)
        self.name = name


class App:
    def __init__(self, factory: AppFactory, label: str, names: list[str]) -> None:
        self.factory = factory
        self.label = label
        self.names = names

    @property
    def path(self) -> Path:
        return self.factory.root / self.label

    def audit(
        self,
        *targets: int | str,
        together: bool = True,
        trace: bool = True,
        installed: Sequence[str] = (),
        **config: Any,
    ) -> AuditReport:
        """Audit migrations (1-based numbers or names; default: the last one).

        ``together``: the targets form one change (tables created by an earlier
        one count as new); else each is judged on its own.
        """
        chosen = [self._name(t) for t in targets] or [self.names[-1]]
        keys = tuple((self.label, n) for n in chosen)
        values: dict[str, Any] = {
            "postgres": "url",
            "database_url": self.factory.url,
            "trace": trace,
            **config,
        }
        with override_settings(
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "migration_guard",
                *installed,
                self.label,
            ],
            MIGRATION_GUARD={},
        ):
            cfg = build_config(values, django_settings={}, use_pyproject=False)
            if together:
                return run_audit(AuditRequest(selection=Selection(keys=keys), config=cfg))
            reports = [
                run_audit(AuditRequest(selection=Selection(keys=(k,)), config=cfg)) for k in keys
            ]
            first = reports[0]
            return type(first)(
                change=first.change,
                postgres=first.postgres,
                migrations=tuple(m for r in reports for m in r.migrations),
                traced=first.traced,
                fail_on=first.fail_on,
                notes=tuple(note for r in reports for note in r.notes),
            )

    def _name(self, target: int | str) -> str:
        if isinstance(target, int):
            return self.names[target - 1]
        return target

    @staticmethod
    def rules(report: AuditReport) -> list[str]:
        """Rule ids reported, sorted (unused-ignore and brief-lock advice left out)."""
        return sorted(f.rule for f in report.findings if f.rule not in QUIET)

    @staticmethod
    def findings(report: AuditReport, rule: str) -> list[Any]:
        return [f for f in report.findings if f.rule == rule]


#: Advice that shows on almost every ALTER TABLE when no lock_timeout is set;
#: rule tests look at it only where it is the subject.
QUIET = frozenset({"lock-timeout-missing"})


class AppFactory:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self._labels: list[str] = []
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))

    def __call__(self, *migrations: Sequence[str] | Migration, models: str = "") -> App:
        label = f"t{uuid.uuid4().hex[:10]}"
        pkg = self.root / label
        (pkg / "migrations").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "models.py").write_text(models or "")
        (pkg / "migrations" / "__init__.py").write_text("")
        names: list[str] = []
        for number, spec in enumerate(migrations, start=1):
            m = spec if isinstance(spec, Migration) else Migration(spec)
            name = m.name or f"{number:04d}_m{number}"
            deps = list(m.dependencies)
            if names:
                deps.insert(0, (label, names[-1]))
            attributes = []
            if m.atomic is not None:
                attributes.append(f"    atomic = {m.atomic!r}")
            if m.attributes:
                attributes.append(textwrap.indent(textwrap.dedent(m.attributes).strip(), "    "))
            ops = "\n".join(
                textwrap.indent(textwrap.dedent(op).strip(), " " * 8) + "," for op in m.operations
            )
            text = TEMPLATE.format(
                header=HEADER.format(imports=m.imports),
                extra=textwrap.dedent(m.extra),
                attributes="\n".join(attributes) or "    pass",
                dependencies=deps,
                operations=ops,
            ).replace("\n    pass\n    dependencies", "\n    dependencies")
            (pkg / "migrations" / f"{name}.py").write_text(text)
            names.append(name)
        importlib.invalidate_caches()
        self._labels.append(label)
        return App(self, label, names)

    def cleanup(self) -> None:
        for label in self._labels:
            for module in [m for m in sys.modules if m == label or m.startswith(label + ".")]:
                del sys.modules[module]
        if str(self.root) in sys.path:
            sys.path.remove(str(self.root))
