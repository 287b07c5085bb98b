"""The strategies. Every module of this package defines one; they register themselves.

:func:`plan_operation` asks them, by priority, which one makes an operation
safe; an operation none of them covers is carried over unchanged.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..model import Chain, Step
from .base import Strategy, passthrough, registered

if TYPE_CHECKING:
    from ..context import OpContext, PlanContext

__all__ = ["Strategy", "all_strategies", "get", "plan_operation", "resume", "rule_strategies"]

_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def all_strategies() -> list[Strategy]:
    """One instance of each strategy, in the order they are asked."""
    _load()
    return [cls() for cls in sorted(registered().values(), key=lambda c: (c.priority, c.id))]


def get(strategy_id: str) -> Strategy:
    _load()
    return registered()[strategy_id]()


def rule_strategies() -> dict[str, list[str]]:
    """Audit rule id -> ids of the strategies that fix it."""
    out: dict[str, list[str]] = {}
    for strategy in all_strategies():
        for rule in strategy.rules:
            out.setdefault(rule, []).append(strategy.id)
    return dict(sorted(out.items()))


def plan_operation(ctx: OpContext) -> Chain:
    """The chain of steps that makes ``ctx.operation`` safe (or carries it over)."""
    for strategy in all_strategies():
        if strategy.matches(ctx):
            chain = strategy.plan(ctx)
            chain.index = ctx.index
            return chain
    return passthrough(ctx)


def resume(strategy_id: str, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
    return get(strategy_id).resume(data, plan)
