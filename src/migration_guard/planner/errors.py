"""The errors the planner raises on purpose (the command turns them into exit status 2)."""

from __future__ import annotations

from ..exceptions import MigrationGuardError


class PlanError(MigrationGuardError):
    """No plan can be made as asked (unknown app or migration, applied migration...)."""


class VerificationError(MigrationGuardError):
    """The written plan failed verification; the files were restored."""
