"""Which migrations are "the change".

* ``app_label migration_name``: that migration (a unique prefix is enough, as
  with ``sqlmigrate``); ``app_label`` alone: each of the app's migrations;
* ``--all``: every migration of first-party apps, each judged on its own;
* ``--since REF``: migration files added or changed since the merge base with
  ``REF`` (committed, uncommitted or untracked), deployed together;
* ``--unapplied --database ALIAS``: what that database's ``django_migrations``
  does not list, read with a read-only connection;
* nothing: ``--since`` the configured base ref (else the remote's default
  branch, else ``main``/``master``).

The migration graph is loaded from disk only: no database is needed here.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import subprocess
import sysconfig
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db.migrations.exceptions import (
    AmbiguityError,
    BadMigrationError,
    CircularDependencyError,
    InconsistentMigrationHistory,
    NodeNotFoundError,
)
from django.db.migrations.loader import MigrationLoader

from .exceptions import MigrationLoadError, SelectionError
from .source import migration_path

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the user asked for on the command line."""

    app_label: str | None = None
    migration_name: str | None = None
    all: bool = False
    include_third_party: bool = False
    since: str | None = None
    unapplied: bool = False
    database: str = "default"
    #: Exactly these migrations, audited together as one change (for programs, e.g. the planner).
    keys: tuple[Key, ...] = ()


@dataclasses.dataclass(frozen=True)
class Change:
    """The migrations to audit, in plan order."""

    targets: tuple[Key, ...]
    #: One line for people: what was chosen and why.
    description: str
    #: True: each migration is judged as a change of its own (``--all``).
    separately: bool = False
    excluded: tuple[Key, ...] = ()


# --- loading -------------------------------------------------------------------------


def load_graph() -> MigrationLoader:
    """The project's migration graph, from disk (no database)."""
    try:
        loader = MigrationLoader(None, ignore_no_migrations=True)
    except NodeNotFoundError as exc:
        raise MigrationLoadError(
            f"a migration depends on one that does not exist: {exc}. Restore the missing "
            "migration or correct the dependency."
        ) from exc
    except CircularDependencyError as exc:  # Django's loader checks for cycles itself
        raise MigrationLoadError(_cycle_message(exc)) from exc
    except InconsistentMigrationHistory as exc:  # pragma: no cover - needs a database
        raise MigrationLoadError(str(exc)) from exc
    except BadMigrationError as exc:
        raise MigrationLoadError(f"cannot load the project's migrations: {exc}") from exc
    except Exception as exc:  # whatever a migration module raises when imported
        raise MigrationLoadError(
            f"cannot load the project's migrations: {_import_failure(exc)}. Fix that file; "
            "`python manage.py showmigrations` fails the same way."
        ) from exc
    check_graph(loader)
    return loader


def _cycle_message(exc: Exception) -> str:
    return (
        f"the migrations' dependencies form a cycle: {exc}. Break it by removing one "
        "of those dependencies."
    )


def _shown(filename: str) -> str:
    """``filename`` relative to the working folder when it is inside it."""
    try:
        return Path(filename).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError):
        return filename


def _import_failure(exc: BaseException) -> str:
    """Which file and line failed to import, and how (no traceback needed)."""
    kind = type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename:
        detail = exc.msg or str(exc)
        if "can't decode" in detail:
            detail += (
                " (save the file as UTF-8, or declare its encoding on its first line, "
                "e.g. # -*- coding: latin-1 -*-)"
            )
        return f"{kind} in {_shown(exc.filename)}, line {exc.lineno}: {detail}"
    # The frame just below Django's loader is the migration module being imported.
    frames = traceback.extract_tb(exc.__traceback__)
    below_loader = False
    for frame in frames:
        if frame.name == "load_disk" and frame.filename.endswith("loader.py"):
            below_loader = True
            continue
        if below_loader and frame.name == "<module>":
            return f"{kind} in {_shown(frame.filename)}, line {frame.lineno}: {exc}"
    return f"{kind}: {exc}"


def check_graph(loader: MigrationLoader) -> None:
    """Refuse graphs ``migrate`` would refuse: cycles and several leaves in one app."""
    from django.db.migrations.exceptions import CircularDependencyError

    try:
        loader.graph.ensure_not_cyclic()
    except CircularDependencyError as exc:
        raise MigrationLoadError(_cycle_message(exc)) from exc
    conflicts = loader.detect_conflicts()
    if conflicts:
        listed = "; ".join(f"{app}: {', '.join(sorted(names))}" for app, names in conflicts.items())
        raise MigrationLoadError(
            f"conflicting migrations, several leaf nodes in one app ({listed}). "
            "Run `python manage.py makemigrations --merge` to add a merge migration."
        )


def full_plan(loader: MigrationLoader, targets: Iterable[Key] | None = None) -> list[Key]:
    """Every node needed for ``targets`` (default: all leaves), in apply order."""
    graph = loader.graph
    nodes = list(targets) if targets is not None else graph.leaf_nodes()
    plan: list[Key] = []
    seen: set[Key] = set()
    for node in nodes:
        for key in graph.forwards_plan(node):
            if key not in seen:
                seen.add(key)
                plan.append(key)
    return plan


@dataclasses.dataclass(frozen=True)
class Order:
    """How a change is applied: the whole base first, then the change, each in plan order."""

    base: tuple[Key, ...]
    change: tuple[Key, ...]
    #: Base migrations that depend on a change migration, so they belong to the change:
    #: (migration, the change migration it depends on).
    joined: tuple[tuple[Key, Key], ...] = ()

    @property
    def keys(self) -> list[Key]:
        return [*self.base, *self.change]


def change_order(loader: MigrationLoader, targets: Iterable[Key], *, separately: bool) -> Order:
    """Split the plan of ``targets`` into the base and the change.

    Together (one deploy): every migration that is not part of the change is
    applied before the first change migration, so "pre-existing" means the
    same thing for every migration of the change. A base migration that
    depends on a change migration cannot run before it: it joins the change.
    Separately (``--all``): each target is a change of its own, so the plan
    order is kept and the base of each target is everything before it.
    """
    wanted = list(targets)
    plan = full_plan(loader, wanted)
    if separately:
        first = next((i for i, key in enumerate(plan) if key in set(wanted)), len(plan))
        return Order(tuple(plan[:first]), tuple(plan[first:]))
    graph = loader.graph
    members = set(wanted)
    joined: list[tuple[Key, Key]] = []
    for key in plan:
        if key in members:
            continue
        parents = [p.key for p in graph.node_map[key].parents if p.key in members]
        if parents:
            members.add(key)
            joined.append((key, sorted(parents)[0]))
    return Order(
        tuple(k for k in plan if k not in members),
        tuple(k for k in plan if k in members),
        tuple(joined),
    )


# --- first or third party ---------------------------------------------------------------


def _install_dirs() -> list[Path]:
    dirs = set()
    for name in ("purelib", "platlib", "stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            dirs.add(Path(path).resolve())
    return sorted(dirs)


def is_third_party(app_label: str) -> bool:
    """Installed from a package (site-packages) rather than part of the project."""
    try:
        path = Path(apps.get_app_config(app_label).path).resolve()
    except LookupError:
        return True
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return True
    return any(path.is_relative_to(d) for d in _install_dirs())


def _excluded(key: Key, config: Any) -> bool:
    app, name = key
    if app in config.exclude_apps:
        return True
    return any(
        fnmatch.fnmatchcase(f"{app}.{name}", pattern) for pattern in config.exclude_migrations
    )


# --- selection ----------------------------------------------------------------------


def check_app(loader: MigrationLoader, app_label: str, no_migrations: str = "") -> None:
    """An installed app with migrations, or a SelectionError suggesting close labels."""
    try:
        apps.get_app_config(app_label)
    except LookupError:
        labels = [cfg.label for cfg in apps.get_app_configs()]
        close = difflib.get_close_matches(app_label, labels, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SelectionError(f"no installed app with label {app_label!r}.{hint}") from None
    if app_label not in loader.migrated_apps:
        raise SelectionError(f"app {app_label!r} has no migrations{no_migrations}.")


def _find_migration(loader: MigrationLoader, app_label: str, name: str) -> Key:
    try:
        migration = loader.get_migration_by_prefix(app_label, name)
    except AmbiguityError:
        matches = sorted(
            n for a, n in loader.disk_migrations if a == app_label and n.startswith(name)
        )
        raise SelectionError(
            f"more than one migration of {app_label!r} starts with {name!r}: "
            f"{', '.join(matches)}. Give more of the name."
        ) from None
    except KeyError:
        names = sorted(n for a, n in loader.graph.nodes if a == app_label)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SelectionError(
            f"app {app_label!r} has no migration {name!r}.{hint} "
            f"(`python manage.py showmigrations {app_label}` lists them)"
        ) from None
    key = (migration.app_label, migration.name)
    if key not in loader.graph.nodes:
        replaced_by = [
            k for k, m in loader.graph.nodes.items() if key in (getattr(m, "replaces", None) or [])
        ]
        if replaced_by:
            raise SelectionError(
                f"{app_label}.{name} is replaced by the squashed migration "
                f"{replaced_by[0][0]}.{replaced_by[0][1]}; audit that one."
            )
        raise SelectionError(f"{app_label}.{name} is not part of the migration graph.")
    return key


def select(loader: MigrationLoader, selection: Selection, config: Any) -> Change:
    """Turn the user's selection into the list of migrations to audit."""
    modes = sum(
        bool(x) for x in (selection.app_label, selection.all, selection.since, selection.unapplied)
    )
    if modes > 1:
        raise SelectionError(
            "choose one of: app_label [migration_name], --all, --since REF, --unapplied"
        )
    plan = full_plan(loader)
    if selection.keys:
        missing = [k for k in selection.keys if k not in loader.graph.nodes]
        if missing:
            raise SelectionError(f"unknown migrations: {', '.join('.'.join(k) for k in missing)}")
        names = ", ".join(f"{a}.{n}" for a, n in selection.keys)
        return _change(list(selection.keys), plan, config, names, separately=False)
    if selection.app_label:
        check_app(loader, selection.app_label)
        if selection.migration_name:
            key = _find_migration(loader, selection.app_label, selection.migration_name)
            return _change([key], plan, config, f"{key[0]}.{key[1]}", separately=False)
        keys = [k for k in plan if k[0] == selection.app_label]
        return _change(
            keys, plan, config, f"every migration of {selection.app_label}", separately=True
        )
    if selection.all:
        third = selection.include_third_party or config.include_third_party
        keys = [k for k in plan if third or not is_third_party(k[0])]
        what = "every migration" if third else "every migration of first-party apps"
        return _change(keys, plan, config, what, separately=True)
    if selection.unapplied:
        applied = read_applied(selection.database)
        keys = [k for k in plan if not _is_applied(loader, k, applied)]
        return _change(
            keys,
            plan,
            config,
            f"migrations not yet applied on database {selection.database!r}",
            separately=False,
        )
    ref = selection.since
    chosen_by_default = ref is None
    if ref is None:
        ref = config.base_ref or default_base_ref()
    keys, merge_base = changed_since(loader, ref)
    how = (
        "(default base; pass --since REF, --all or app_label to choose)"
        if chosen_by_default
        else ""
    )
    desc = f"migrations added or changed since {ref} (merge base {merge_base[:12]}) {how}".strip()
    ordered = [k for k in plan if k in set(keys)]
    return _change(ordered, plan, config, desc, separately=False)


def _change(
    keys: list[Key], plan: list[Key], config: Any, description: str, *, separately: bool
) -> Change:
    order = {k: i for i, k in enumerate(plan)}
    keys = sorted(set(keys), key=lambda k: order.get(k, len(order)))
    excluded = tuple(k for k in keys if _excluded(k, config))
    targets = tuple(k for k in keys if k not in excluded)
    return Change(targets, description, separately, excluded)


def _is_applied(loader: MigrationLoader, key: Key, applied: set[Key]) -> bool:
    if key in applied:
        return True
    migration = loader.graph.nodes[key]
    replaces = getattr(migration, "replaces", None) or []
    return bool(replaces) and all(tuple(r) in applied for r in replaces)


# --- git ---------------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise SelectionError(
            "git is not installed, so the change cannot be found from history; "
            "pass app_label [migration_name] or --all."
        ) from None
    if result.returncode != 0:
        raise SelectionError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def repo_root(start: Path | None = None) -> Path:
    start = start or Path.cwd()
    try:
        out = _git("rev-parse", "--show-toplevel", cwd=start)
    except SelectionError:
        raise SelectionError(
            f"{start} is not inside a git repository, so the change cannot be found "
            "from history; pass app_label [migration_name], --all or --unapplied."
        ) from None
    return Path(out.strip())


def default_base_ref(start: Path | None = None) -> str:
    """The remote's default branch, else ``main``/``master``."""
    root = repo_root(start)
    try:
        head = _git("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", cwd=root).strip()
        if head:
            return head.removeprefix("refs/remotes/")
    except SelectionError:
        pass
    for candidate in ("origin/main", "origin/master", "main", "master"):
        try:
            _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=root)
            return candidate
        except SelectionError:
            continue
    raise SelectionError(
        "cannot find a base branch (no origin/HEAD, main or master). Pass --since REF, "
        "set base_ref in [tool.migration_guard], or select migrations explicitly."
    )


def changed_since(
    loader: MigrationLoader, ref: str, start: Path | None = None
) -> tuple[list[Key], str]:
    """Migrations whose files were added or changed since the merge base with ``ref``."""
    root = repo_root(start)
    try:
        merge_base = _git("merge-base", ref, "HEAD", cwd=root).strip()
    except SelectionError as exc:
        raise SelectionError(
            f"cannot compare with {ref!r}: {exc}. Fetch it first (git fetch origin) or pass "
            "another --since ref."
        ) from None
    changed = _git("diff", "--name-only", "--diff-filter=AMR", merge_base, "--", cwd=root)
    untracked = _git("ls-files", "--others", "--exclude-standard", cwd=root)
    paths = {(root / line).resolve() for line in (changed + untracked).splitlines() if line.strip()}
    keys = []
    for key, migration in loader.graph.nodes.items():
        path = migration_path(migration)
        if path is not None and path.resolve() in paths:
            keys.append(key)
    return keys, merge_base


# --- applied migrations, read only ----------------------------------------------------


def read_applied(alias: str) -> set[Key]:
    """``django_migrations`` of ``alias``, read in a read-only transaction."""
    import psycopg
    from django.db import connections

    from .djangodb import original_settings
    from .postgres.base import redact

    original_settings(alias)
    conn = connections[alias]
    if conn.vendor != "postgresql":
        raise SelectionError(f"--unapplied needs a PostgreSQL database; {alias!r} is {conn.vendor}")
    params = dict(conn.get_connection_params())
    for key in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(key, None)
    options = params.pop("options", "") or ""
    params["options"] = f"{options} -c default_transaction_read_only=on".strip()
    params.setdefault("connect_timeout", 10)
    try:
        with psycopg.connect(**params) as pg:
            pg.read_only = True
            exists = pg.execute("SELECT to_regclass('django_migrations') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return set()
            rows = pg.execute("SELECT app, name FROM django_migrations").fetchall()
    except psycopg.Error as exc:
        raise SelectionError(
            f"cannot read applied migrations from database {alias!r}: "
            f"{redact(str(exc)).strip()}\n--unapplied reads django_migrations through "
            f"DATABASES[{alias!r}] (read only): check that it is reachable from here, or choose "
            "the change another way (app_label [migration_name], --since REF, --all)."
        ) from exc
    return {(str(a), str(n)) for a, n in rows}
