"""The rules. Every module of this package defines one; they register themselves.

Rules from other packages register through the ``migration_guard.rules``
entry point group (the entry point names a module or a Rule class).
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata

from .base import Prediction, Rule, RuleContext, registered

__all__ = ["Prediction", "Rule", "RuleContext", "all_rules", "get", "registry"]

_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    for entry in metadata.entry_points(group="migration_guard.rules"):
        entry.load()


def registry() -> dict[str, type[Rule]]:
    """Every rule id and its class."""
    _load()
    return registered()


def all_rules() -> list[Rule]:
    """One instance of each rule, sorted by id."""
    return [cls() for _, cls in sorted(registry().items())]


def get(rule_id: str) -> type[Rule]:
    return registry()[rule_id]
