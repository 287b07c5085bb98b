"""``plan_zero_downtime``: write the safe multi-step migrations instead of the dangerous one.

:func:`run_plan` is the one entry point (the command is a thin shell around
it); :func:`rule_strategies` maps audit rule ids to the strategies that fix them,
so that reports can print the plan command.
"""

from __future__ import annotations

from .errors import PlanError, VerificationError
from .service import DEFAULT_POSTGRES_MAJOR, PlanOutcome, PlanRequest, run_plan
from .strategies import rule_strategies

__all__ = [
    "DEFAULT_POSTGRES_MAJOR",
    "PlanError",
    "PlanOutcome",
    "PlanRequest",
    "VerificationError",
    "rule_strategies",
    "run_plan",
]
