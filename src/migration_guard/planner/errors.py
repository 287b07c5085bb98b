"""The errors the planner raises on purpose (the command turns them into exit status 2)."""

from __future__ import annotations

from ..exceptions import MigrationGuardError


class PlanError(MigrationGuardError):
    """No plan can be made as asked (unknown app or migration, applied migration...)."""


class VerificationError(MigrationGuardError):
    """The written plan failed verification; the files were restored."""


class PlanAborted(MigrationGuardError):
    """Writing or verifying the plan stopped (an error, a signal); every file was restored."""

    def __init__(self, stage: str, cause: BaseException, restored: list[str]) -> None:
        self.stage = stage
        self.cause = cause
        self.restored = restored
        self.signum = _signal_of(cause)
        if self.signum is not None:
            what = f"interrupted by signal {self.signum} while {stage}"
        else:
            text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            what = f"{stage} failed: {type(cause).__name__}" + (f": {text}" if text else "")
        files = "; ".join(restored) if restored else "none had changed"
        super().__init__(
            f"{what}. Every file the plan touched was restored byte for byte ({files}); "
            "nothing of the plan is left."
        )


def _signal_of(cause: BaseException) -> int | None:
    import signal

    from ..exceptions import Interrupted

    if isinstance(cause, Interrupted):
        return cause.signum
    if isinstance(cause, KeyboardInterrupt):
        return int(signal.SIGINT)
    return None
