"""Generate a realistic Django project with a long migration history, for load tests.

The project has ``apps`` apps of ``migrations`` migrations each. The histories
look like real ones: models created over time with foreign keys to models of
earlier apps (and to ``auth.User``), nullable fields and fields with defaults
added, fields altered, renamed and removed, indexes and constraints added,
data migrations (``RunPython`` with and without a reverse) and a few ``RunSQL``.
Dependencies only point at earlier apps, so the graph is acyclic; the last app
depends on the latest migration of every other app (a "reporting" app that
reads everything), so auditing its migrations needs the whole history.

The last ``hazards`` migrations of the last app (of each of the last
``hazard_apps`` apps) carry what an audit must find on tables that exist
before them: a non-concurrent ``AddIndex``, an
``AlterField`` from integer to bigint (a table rewrite) and an ``AddField``
NOT NULL with a default.

``manage.py migrate`` applies the whole history on PostgreSQL. The apps have
no ``models.py``: the audit reads migrations only. Settings read the database
from ``DATABASE_URL`` (``postgresql://user:pw@host:port/name``, ``?host=/socket/dir``
honoured). With ``git=True`` the project is a git repository whose last commit
adds the last ``change`` migration files, so ``migration_audit --since HEAD~1``
audits exactly them as one change.

Everything is decided by ``seed``: the same arguments write the same files.

    python -m benchmarks.genproject ../bigproject --apps 40 --migrations 10 --git
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import subprocess
import textwrap
from pathlib import Path

import django

#: Keyword of CheckConstraint's condition (``check`` was renamed in Django 5.1).
CHECK_KEYWORD = "condition" if django.VERSION >= (5, 1) else "check"

MODEL_WORDS = (
    *("Customer", "Order", "Invoice", "Product", "Shipment", "Payment", "Ticket", "Comment"),
    *("Tag", "Category", "Address", "Coupon", "Review", "Refund", "Warehouse", "Supplier"),
    *("Article", "Event", "Booking", "Report", "Account", "Contract", "Device", "Message"),
    *("Project", "Task", "Team", "Vendor", "Voucher", "Plan"),
)
FIELD_WORDS = (
    *("status", "title", "note", "amount", "quantity", "code", "priority", "score"),
    *("reference", "label", "rank", "source", "channel", "region", "currency", "weight"),
    *("color", "summary", "external_id", "position"),
)

#: Relative frequency of each kind of operation in ordinary migrations.
OPERATION_WEIGHTS = {
    "create_model": 7,
    "add_nullable": 18,
    "add_default": 12,
    "add_fk": 6,
    "alter_field": 12,
    "add_index": 10,
    "rename_field": 6,
    "remove_field": 6,
    "add_constraint": 6,
    "run_python": 8,
    "run_sql": 4,
    "alter_options": 4,
}


@dataclasses.dataclass
class Field:
    name: str
    kind: str  # char, text, int, bigint, bool, datetime, decimal, fk, user
    null: bool = False
    default: str | None = None  # Python source of the default, None: no default
    max_length: int = 100
    target: str | None = None  # "app_label.modelname" for fk
    on_delete: str = "CASCADE"
    related_name: str | None = None
    auto_now_add: bool = False
    #: Referenced by an index, a constraint or a planned hazard: never renamed or removed.
    pinned: bool = False

    @property
    def column(self) -> str:
        return f"{self.name}_id" if self.kind in ("fk", "user") else self.name

    def source(self) -> str:
        args: list[str] = []
        if self.kind == "char":
            args.append(f"max_length={self.max_length}")
        if self.kind == "decimal":
            args += ["decimal_places=2", "max_digits=12"]
        if self.auto_now_add:
            args.append("auto_now_add=True")
        if self.null:
            args.append("null=True")
            if self.kind in ("char", "text"):
                args.append("blank=True")
        if self.default is not None:
            args.append(f"default={self.default}")
        if self.kind == "fk":
            args.append(f"on_delete=django.db.models.deletion.{self.on_delete}")
            if self.related_name:
                args.append(f"related_name={self.related_name!r}")
            args.append(f"to={self.target!r}")
            return f"models.ForeignKey({', '.join(args)})"
        if self.kind == "user":
            args.append(f"on_delete=django.db.models.deletion.{self.on_delete}")
            if self.related_name:
                args.append(f"related_name={self.related_name!r}")
            args.append("to=settings.AUTH_USER_MODEL")
            return f"models.ForeignKey({', '.join(args)})"
        cls = {
            "char": "CharField",
            "text": "TextField",
            "int": "IntegerField",
            "bigint": "BigIntegerField",
            "bool": "BooleanField",
            "datetime": "DateTimeField",
            "decimal": "DecimalField",
        }[self.kind]
        return f"models.{cls}({', '.join(args)})"


@dataclasses.dataclass
class Model:
    name: str
    fields: dict[str, Field]
    created_in: str

    @property
    def lower(self) -> str:
        return self.name.lower()


@dataclasses.dataclass
class MigrationFile:
    app_label: str
    name: str
    dependencies: list[tuple[str, str]]
    operations: list[str]
    functions: list[str] = dataclasses.field(default_factory=list)
    swappable_user: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    @property
    def relpath(self) -> str:
        return f"{self.app_label}/migrations/{self.name}.py"

    def source(self) -> str:
        lines = ["# Generated by benchmarks/genproject.py", ""]
        lines.append("import django.db.models.deletion")
        if self.swappable_user:
            lines.append("from django.conf import settings")
        lines.append("from django.db import migrations, models")
        lines.append("")
        for function in self.functions:
            lines += ["", function.rstrip(), ""]
        deps = [f"        {dep!r}," for dep in self.dependencies]
        if self.swappable_user:
            deps.insert(0, "        migrations.swappable_dependency(settings.AUTH_USER_MODEL),")
        lines += ["", "class Migration(migrations.Migration):", "    dependencies = ["]
        lines += deps
        lines += ["    ]", "", "    operations = ["]
        for op in self.operations:
            lines.append(textwrap.indent(op, " " * 8) + ",")
        lines += ["    ]", ""]
        return "\n".join(lines)


@dataclasses.dataclass
class App:
    label: str
    index: int
    models: dict[str, Model] = dataclasses.field(default_factory=dict)
    migrations: list[MigrationFile] = dataclasses.field(default_factory=list)
    counter: int = 0
    #: The model created first, whose reserved fields the hazards use.
    anchor: str | None = None

    def next_number(self) -> int:
        self.counter += 1
        return self.counter


@dataclasses.dataclass(frozen=True)
class GeneratedProject:
    root: Path
    apps: tuple[str, ...]
    #: Every migration, in the order the files were written (apps in order).
    migrations: tuple[tuple[str, str], ...]
    #: The last ``change`` migrations: what ``--since HEAD~1`` selects with ``git=True``.
    change: tuple[tuple[str, str], ...]
    #: Migrations the change needs applied first (its ancestors, outside the change).
    base: int
    hazards: tuple[tuple[str, str], ...]

    @property
    def last_app(self) -> str:
        return self.apps[-1]


class _Generator:
    def __init__(
        self,
        apps: int,
        migrations: int,
        seed: int,
        hazards: int,
        *,
        max_ops: int = 4,
        relations: float = 1.0,
        hazard_apps: int = 1,
    ) -> None:
        if apps < 1 or migrations < 1:
            raise ValueError("apps and migrations must be at least 1")
        if hazards >= migrations:
            raise ValueError("hazards must leave the last app's initial migration before them")
        self.rng = random.Random(seed)
        self.n_apps = apps
        self.n_migrations = migrations
        self.n_hazards = hazards
        self.hazard_apps = max(1, hazard_apps)
        self.max_ops = max(1, max_ops)
        self.relations = max(0.0, relations)
        self.apps: list[App] = []

    # -- helpers -----------------------------------------------------------------------
    def _field_name(self, model: Model) -> str:
        words = [w for w in FIELD_WORDS if w not in model.fields]
        if words:
            return self.rng.choice(words)
        n = 2
        while True:
            name = f"{self.rng.choice(FIELD_WORDS)}_{n}"
            if name not in model.fields:
                return name
            n += 1

    def _model_name(self, app: App) -> str:
        words = [w for w in MODEL_WORDS if w not in app.models]
        if words:
            return self.rng.choice(words)
        return f"{self.rng.choice(MODEL_WORDS)}{len(app.models)}"

    def _plain_field(self, name: str, *, nullable: bool) -> Field:
        kind = self.rng.choice(
            ["char", "char", "int", "int", "bool", "text", "decimal", "datetime"]
        )
        if nullable:
            if kind == "bool":
                kind = "int"
            return Field(name, kind, null=True)
        default = {
            "char": repr(self.rng.choice(["", "new", "default", "n/a"])),
            "text": "''",
            "int": str(self.rng.choice([0, 1, 10])),
            "bool": self.rng.choice(["False", "True"]),
            "decimal": "0",
            "datetime": None,
        }[kind]
        if kind == "datetime":
            return Field(name, kind, null=True)
        return Field(name, kind, default=default, max_length=self.rng.choice([32, 64, 100, 255]))

    def _foreign_target(self, app: App) -> tuple[App, Model] | None:
        earlier = [a for a in self.apps if a is not app and a.models]
        if not earlier:
            return None
        other = self.rng.choice(earlier[-8:])  # mostly recent apps, like real projects
        return other, self.rng.choice(list(other.models.values()))

    def _fk_field(
        self, app: App, model: Model, target_app: App, target: Model, *, null: bool
    ) -> Field:
        name = target.lower if target.lower not in model.fields else f"{target.lower}_ref"
        n = 2
        while name in model.fields:
            name = f"{target.lower}_ref{n}"
            n += 1
        return Field(
            name,
            "fk",
            null=null,
            target=f"{target_app.label}.{target.lower}",
            on_delete="SET_NULL" if null else "CASCADE",
            related_name=f"{app.label}_{model.lower}_{name}",
        )

    @staticmethod
    def _create_model_source(model: Model) -> str:
        fields = [
            "('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, "
            "verbose_name='ID'))"
        ]
        fields += [f"({f.name!r}, {f.source()})" for f in model.fields.values()]
        body = ",\n".join(fields)
        return (
            f"migrations.CreateModel(\n    name={model.name!r},\n    fields=[\n"
            f"{textwrap.indent(body, ' ' * 8)},\n    ],\n)"
        )

    # -- operations ----------------------------------------------------------------------
    def _new_model(self, app: App, mig: MigrationFile, *, anchor: bool = False) -> str:
        model = Model(self._model_name(app), {}, mig.name)
        if anchor:
            # reserved for the hazards: never renamed, removed or altered
            model.fields["code"] = Field("code", "char", max_length=64, default="''", pinned=True)
            model.fields["quantity"] = Field("quantity", "int", default="0", pinned=True)
        for _ in range(self.rng.randint(2, 4)):
            name = self._field_name(model)
            model.fields[name] = self._plain_field(name, nullable=self.rng.random() < 0.3)
        if self.rng.random() < 0.5:
            model.fields["created_at"] = Field("created_at", "datetime", auto_now_add=True)
        own = [m for m in app.models.values()]
        if own and self.rng.random() < 0.6 * self.relations:
            parent = self.rng.choice(own)
            fk = self._fk_field(app, model, app, parent, null=False)
            model.fields[fk.name] = fk
            self._depend(mig, app.label, parent.created_in)
        if self.rng.random() < 0.5 * self.relations:
            target = self._foreign_target(app)
            if target is not None:
                fk = self._fk_field(app, model, target[0], target[1], null=True)
                model.fields[fk.name] = fk
                self._depend(mig, target[0].label, target[0].migrations[-1].name)
        if self.rng.random() < 0.2 * self.relations:
            model.fields["owner"] = Field(
                "owner",
                "user",
                null=True,
                on_delete="SET_NULL",
                related_name=f"{app.label}_{model.lower}_owned",
            )
            mig.swappable_user = True
        app.models[model.name] = model
        if anchor:
            app.anchor = model.name
        return self._create_model_source(model)

    def _depend(self, mig: MigrationFile, label: str, name: str) -> None:
        if label == mig.app_label:
            return  # the previous migration of the app is already a dependency
        dep = (label, name)
        if dep not in mig.dependencies:
            mig.dependencies.append(dep)

    def _pick_model(self, app: App) -> Model:
        return self.rng.choice(list(app.models.values()))

    def _op(self, kind: str, app: App, mig: MigrationFile, slug: list[str]) -> str | None:
        rng = self.rng
        if kind == "create_model":
            source = self._new_model(app, mig)
            slug.append(list(app.models)[-1].lower())
            return source
        model = self._pick_model(app)
        free = [f for f in model.fields.values() if not f.pinned and f.kind not in ("fk", "user")]
        if kind in ("add_nullable", "add_default"):
            name = self._field_name(model)
            field = self._plain_field(name, nullable=kind == "add_nullable")
            model.fields[name] = field
            slug.append(f"{model.lower}_{name}")
            return (
                f"migrations.AddField(\n    model_name={model.lower!r},\n    name={name!r},\n"
                f"    field={field.source()},\n)"
            )
        if kind == "add_fk":
            target = self._foreign_target(app)
            if target is None:
                return None
            field = self._fk_field(app, model, target[0], target[1], null=True)
            model.fields[field.name] = field
            self._depend(mig, target[0].label, target[0].migrations[-1].name)
            slug.append(f"{model.lower}_{field.name}")
            return (
                f"migrations.AddField(\n    model_name={model.lower!r},\n    "
                f"name={field.name!r},\n    field={field.source()},\n)"
            )
        if kind == "alter_field":
            candidates = [f for f in free if f.kind in ("char", "int", "text")]
            if not candidates:
                return None
            field = rng.choice(candidates)
            if field.kind == "char":
                if rng.random() < 0.5 or field.null:
                    field.max_length = min(field.max_length * 2, 1024)
                else:
                    field.null, field.default = True, None
            elif field.kind == "int":
                if field.null or rng.random() < 0.7:
                    field.null, field.default = False, str(rng.choice([0, 1, 5, 100]))
                else:
                    field.null, field.default = True, None
            else:
                field.null = not field.null
                field.default = None if field.null else "''"
            slug.append(f"alter_{model.lower}_{field.name}")
            return (
                f"migrations.AlterField(\n    model_name={model.lower!r},\n    "
                f"name={field.name!r},\n    field={field.source()},\n)"
            )
        if kind == "add_index":
            candidates = [f for f in model.fields.values() if f.kind not in ("text",)]
            if not candidates:
                return None
            fields = rng.sample(candidates, k=min(len(candidates), rng.choice([1, 1, 2])))
            for f in fields:
                f.pinned = True
            name = f"{app.label}_{model.lower[:8]}_{app.next_number()}_idx"
            names = [f.name for f in fields]
            slug.append(f"{model.lower}_{name}")
            return (
                f"migrations.AddIndex(\n    model_name={model.lower!r},\n    "
                f"index=models.Index(fields={names!r}, name={name!r}),\n)"
            )
        if kind == "rename_field":
            if not free:
                return None
            field = rng.choice(free)
            old = field.name
            new = self._field_name(model)
            del model.fields[old]
            field.name = new
            model.fields[new] = field
            slug.append(f"rename_{old}_{model.lower}_{new}")
            return (
                f"migrations.RenameField(\n    model_name={model.lower!r},\n    "
                f"old_name={old!r},\n    new_name={new!r},\n)"
            )
        if kind == "remove_field":
            if len(free) < 2:
                return None
            field = rng.choice(free)
            del model.fields[field.name]
            slug.append(f"remove_{model.lower}_{field.name}")
            return (
                f"migrations.RemoveField(\n    model_name={model.lower!r},\n    "
                f"name={field.name!r},\n)"
            )
        if kind == "add_constraint":
            ints = [f for f in model.fields.values() if f.kind in ("int", "decimal")]
            chars = [f for f in model.fields.values() if f.kind == "char" and not f.null]
            number = app.next_number()
            if ints and (not chars or rng.random() < 0.6):
                field = rng.choice(ints)
                field.pinned = True
                name = f"{app.label}_{model.lower[:8]}_{number}_chk"
                constraint = (
                    f"models.CheckConstraint({CHECK_KEYWORD}=models.Q(({field.name + '__gte'!r}, "
                    f"0)), name={name!r})"
                )
            elif chars:
                field = rng.choice(chars)
                field.pinned = True
                name = f"{app.label}_{model.lower[:8]}_{number}_uniq"
                constraint = f"models.UniqueConstraint(fields=[{field.name!r}], name={name!r})"
            else:
                return None
            slug.append(f"{model.lower}_{name}")
            return (
                f"migrations.AddConstraint(\n    model_name={model.lower!r},\n    "
                f"constraint={constraint},\n)"
            )
        if kind == "run_python":
            number = app.next_number()
            forwards = f"forwards_{number}"
            nullable = [f for f in model.fields.values() if f.kind == "char" and f.null]
            ints = [f for f in model.fields.values() if f.kind == "int" and not f.null]
            if nullable:
                f = rng.choice(nullable)
                body = f"Model.objects.filter({f.name}__isnull=True).update({f.name}='')"
            elif ints:
                f = rng.choice(ints)
                body = f"Model.objects.filter({f.name}__lt=0).update({f.name}=0)"
            else:
                body = "Model.objects.filter(pk__lt=0).delete()"
            mig.functions.append(
                f"def {forwards}(apps, schema_editor):\n"
                f"    Model = apps.get_model({app.label!r}, {model.name!r})\n"
                f"    {body}\n"
            )
            if rng.random() < 0.5:
                backwards = f"backwards_{number}"
                mig.functions.append(
                    f"def {backwards}(apps, schema_editor):\n"
                    f"    Model = apps.get_model({app.label!r}, {model.name!r})\n"
                    f"    Model.objects.filter(pk__lt=0).delete()\n"
                )
            else:
                backwards = "migrations.RunPython.noop"
            slug.append(f"backfill_{model.lower}")
            return f"migrations.RunPython({forwards}, {backwards})"
        if kind == "run_sql":
            table = f"{app.label}_{model.lower}"
            ints = [f for f in model.fields.values() if f.kind == "int" and not f.null]
            choice = rng.random()
            if ints and choice < 0.4:
                col = rng.choice(ints).column
                sql = f'UPDATE "{table}" SET "{col}" = 0 WHERE "{col}" < 0'  # noqa: S608
                reverse = "migrations.RunSQL.noop"
            elif choice < 0.8:
                sql = f"COMMENT ON TABLE \"{table}\" IS 'generated {model.name} table'"
                reverse = repr(f'COMMENT ON TABLE "{table}" IS NULL')
            else:
                sql = f'ANALYZE "{table}"'
                reverse = "migrations.RunSQL.noop"
            slug.append(f"sql_{model.lower}")
            return f"migrations.RunSQL(\n    {sql!r},\n    reverse_sql={reverse},\n)"
        if kind == "alter_options":
            options = rng.choice(
                [
                    "{'ordering': ['-id']}",
                    f"{{'verbose_name': {model.name.lower()!r}}}",
                    f"{{'ordering': ['id'], 'verbose_name_plural': {model.lower + 's'!r}}}",
                ]
            )
            slug.append(f"alter_{model.lower}_options")
            return (
                f"migrations.AlterModelOptions(\n    name={model.lower!r},\n"
                f"    options={options},\n)"
            )
        raise ValueError(kind)

    def _hazard(self, app: App, mig: MigrationFile, number: int, slug: list[str]) -> list[str]:
        assert app.anchor is not None
        model = app.models[app.anchor]
        which = number % 3
        if which == 0:
            name = f"{app.label}_{model.lower[:8]}_{app.next_number()}_idx"
            slug.append(f"{model.lower}_code_idx")
            return [
                f"migrations.AddIndex(\n    model_name={model.lower!r},\n    "
                f"index=models.Index(fields=['code'], name={name!r}),\n)"
            ]
        if which == 1:
            field = model.fields["quantity"]
            field.kind = "bigint"
            slug.append(f"alter_{model.lower}_quantity")
            return [
                f"migrations.AlterField(\n    model_name={model.lower!r},\n    name='quantity',\n"
                f"    field={field.source()},\n)"
            ]
        name = f"priority_level{number // 3 or ''}"
        field = Field(name, "int", default="1", pinned=True)
        model.fields[name] = field
        slug.append(f"{model.lower}_{name}")
        return [
            f"migrations.AddField(\n    model_name={model.lower!r},\n    name={name!r},\n"
            f"    field={field.source()},\n)"
        ]

    # -- the project ---------------------------------------------------------------------
    def generate(self) -> list[App]:
        width = max(2, len(str(self.n_apps - 1)))
        for i in range(self.n_apps):
            app = App(f"app{i:0{width}d}", i)
            self.apps.append(app)
            last = i == self.n_apps - 1
            hazardous = i >= self.n_apps - self.hazard_apps
            for k in range(1, self.n_migrations + 1):
                deps: list[tuple[str, str]] = []
                if k > 1:
                    deps.append((app.label, app.migrations[-1].name))
                mig = MigrationFile(app.label, "", deps, [])
                slug: list[str] = []
                if k == 1:
                    mig.name = "0001_initial"
                    mig.operations.append(self._new_model(app, mig, anchor=True))
                    for _ in range(self.rng.randint(0, 2)):
                        mig.operations.append(self._new_model(app, mig))
                    if last:
                        # the reporting app: it reads every other app's latest tables
                        for other in self.apps[:-1]:
                            self._depend(mig, other.label, other.migrations[-1].name)
                elif hazardous and k > self.n_migrations - self.n_hazards:
                    mig.operations += self._hazard(app, mig, k - 1, slug)
                else:
                    wanted = min(self.max_ops, self.rng.choice([1, 1, 1, 2, 2, 3, 4]))
                    kinds = list(OPERATION_WEIGHTS)
                    weights = [
                        w * self.relations if k == "add_fk" else w
                        for k, w in OPERATION_WEIGHTS.items()
                    ]
                    while len(mig.operations) < wanted:
                        kind = self.rng.choices(kinds, weights)[0]
                        source = self._op(kind, app, mig, slug)
                        if source is None:
                            source = self._op("add_nullable", app, mig, slug)
                        assert source is not None
                        mig.operations.append(source)
                if k > 1:
                    text = "_".join(slug) if len(slug) <= 2 else f"auto_{k:04d}"
                    mig.name = f"{k:04d}_{text}"[:52].rstrip("_")
                app.migrations.append(mig)
        return self.apps


# --- files ---------------------------------------------------------------------------

SETTINGS = '''\
"""Settings of a generated project (benchmarks/genproject.py): migrations only, no models."""

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "generated-project-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "migration_guard",
{apps}
]


def database_from_url(url):
    """A DATABASES entry from postgresql://user:password@host:port/name?host=/socket/dir."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    options = {{k: v[-1] for k, v in query.items() if k not in ("host", "port")}}
    return {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or "") or query.get("host", [""])[-1],
        "PORT": str(parts.port or query.get("port", [""])[-1]),
        "OPTIONS": options,
    }}


DATABASES = {{
    "default": database_from_url(
        os.environ.get("DATABASE_URL", "postgresql://postgres@localhost/generated")
    )
}}

MIGRATION_GUARD = {{}}
'''

MANAGE = """\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

PYPROJECT = """\
# A generated project (benchmarks/genproject.py). This table stops the search for
# a [tool.migration_guard] configuration of an enclosing folder.
[tool.migration_guard]
"""


def _ancestors(files: dict[tuple[str, str], MigrationFile], keys: list[tuple[str, str]]) -> set:
    seen: set[tuple[str, str]] = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in seen or key not in files:
            continue
        seen.add(key)
        stack.extend(files[key].dependencies)
    return seen


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=genproject",
            "-c",
            "user.email=genproject@example.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )


def generate(
    root: Path | str,
    *,
    apps: int = 40,
    migrations: int = 10,
    seed: int = 1,
    hazards: int = 3,
    change: int = 3,
    git: bool = False,
    max_ops: int = 4,
    relations: float = 1.0,
    hazard_apps: int = 1,
    change_apps: int = 1,
) -> GeneratedProject:
    """Write the project into ``root`` (created; must be empty or absent).

    ``max_ops`` caps the operations of one migration (1 to 4, most have 1 or 2);
    ``relations`` scales how often foreign keys are added (0: none, 1: the
    default mix). Applying a history costs Django mostly re-rendering the models
    related to each altered one, so both set how heavy the history is.
    ``hazard_apps``: how many of the last apps end with ``hazards`` hazardous
    migrations. ``change_apps``: the change is the last ``change // change_apps``
    migrations of each of the last ``change_apps`` apps (a merge request spanning
    several apps); 1 (the default): the last ``change`` migrations written.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    generated = _Generator(
        apps,
        migrations,
        seed,
        hazards,
        max_ops=max_ops,
        relations=relations,
        hazard_apps=hazard_apps,
    ).generate()
    (root / "project").mkdir()
    (root / "project" / "__init__.py").write_text("")
    listed = "\n".join(f"    {a.label!r}," for a in generated)
    (root / "project" / "settings.py").write_text(SETTINGS.format(apps=listed))
    (root / "manage.py").write_text(MANAGE)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    files: dict[tuple[str, str], MigrationFile] = {}
    order: list[MigrationFile] = []
    for app in generated:
        folder = root / app.label / "migrations"
        folder.mkdir(parents=True)
        (root / app.label / "__init__.py").write_text("")
        (folder / "__init__.py").write_text("")
        for mig in app.migrations:
            (root / mig.relpath).write_text(mig.source())
            files[mig.key] = mig
            order.append(mig)
    change = max(0, min(change, len(order)))
    if change_apps > 1 and change:
        per_app = max(1, change // change_apps)
        changed = [m for app in generated[-change_apps:] for m in app.migrations[-per_app:]]
    else:
        changed = order[len(order) - change :] if change else []
    change_keys = [m.key for m in changed]
    base = len(_ancestors(files, change_keys) - set(change_keys))
    if git:
        _git(root, "init", "-q")
        _git(root, "add", "-A")
        for mig in changed:
            _git(root, "reset", "-q", "--", mig.relpath)
        _git(root, "commit", "-q", "-m", "history before the change")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "--allow-empty", "-m", "the change")
    hazardous = generated[len(generated) - max(1, hazard_apps) :]
    return GeneratedProject(
        root=root,
        apps=tuple(a.label for a in generated),
        migrations=tuple(m.key for m in order),
        change=tuple(change_keys),
        base=base,
        hazards=tuple(
            m.key for app in hazardous for m in app.migrations[len(app.migrations) - hazards :]
        )
        if hazards
        else (),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="Folder to write (created; must be empty).")
    parser.add_argument("--apps", type=int, default=40)
    parser.add_argument("--migrations", type=int, default=10, help="Migrations per app.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--hazards", type=int, default=3, help="Hazardous migrations at the end of the last app."
    )
    parser.add_argument(
        "--change", type=int, default=3, help="Trailing migrations the last commit adds (--git)."
    )
    parser.add_argument(
        "--git", action="store_true", help="Make a git repository: history, then the change."
    )
    parser.add_argument(
        "--hazard-apps", type=int, default=1, help="How many of the last apps end with hazards."
    )
    parser.add_argument("--max-ops", type=int, default=4, help="Operations per migration, at most.")
    parser.add_argument(
        "--relations", type=float, default=1.0, help="Scale of foreign-key frequency (0 to 1)."
    )
    args = parser.parse_args(argv)
    project = generate(
        args.dest,
        apps=args.apps,
        migrations=args.migrations,
        seed=args.seed,
        hazards=args.hazards,
        change=args.change,
        git=args.git,
        max_ops=args.max_ops,
        relations=args.relations,
        hazard_apps=args.hazard_apps,
    )
    print(
        f"wrote {len(project.migrations)} migrations in {len(project.apps)} apps to "
        f"{project.root}; change: {len(project.change)} migrations "
        f"({', '.join('.'.join(k) for k in project.change[:5])}"
        f"{', ...' if len(project.change) > 5 else ''}), base: {project.base} migrations"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
