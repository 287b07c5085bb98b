"""Pack the steps of all chains into migrations, release by release.

Rules, in the order they matter:

* a chain's steps keep their order; a step marked ``separate`` goes into a later
  migration than the step before it (its own transaction);
* atomic and non-atomic steps never share a migration, and a RunPython data
  step never shares one with DDL;
* a step that scans a table (VALIDATE) never joins a transaction that already
  holds a lock blocking traffic on any table (that lock would last for the whole
  scan);
* a chain starts after every earlier chain that touches the same model state,
  and after any operation the planner cannot see into (RunSQL, RunPython,
  custom operations), which also keep their place relative to everything else;
* otherwise a step joins the earliest migration that fits, so that the
  ``expand`` steps of several changes share one migration, their backfills the
  next, and so on;
* steps of a later release are not placed: they go to the plan record, and so
  does everything after them in the same chain.
"""

from __future__ import annotations

import dataclasses

from .model import Chain, Step
from .strategies.base import keys_conflict


@dataclasses.dataclass
class Slot:
    """One future migration."""

    atomic: bool
    data: bool
    steps: list[Step] = dataclasses.field(default_factory=list)
    locks: set[str] = dataclasses.field(default_factory=set)
    opaque: bool = False

    def accepts(self, step: Step) -> bool:
        if self.atomic != step.atomic or self.data != step.data:
            return False
        if self.opaque or step.opaque:
            return False
        # In a transaction, a lock held on any table would last for the whole scan
        # (without one, every statement commits and releases its locks).
        return not (self.atomic and step.scans and self.locks)

    def add(self, step: Step) -> None:
        self.steps.append(step)
        self.locks |= set(step.locks)
        self.opaque = self.opaque or step.opaque


def schedule(chains: list[Chain]) -> tuple[list[Slot], list[Step]]:
    """(migrations of this release, steps of later releases in chain order)."""
    slots: list[Slot] = []
    later: list[Step] = []
    placed: list[tuple[Chain, int]] = []  # chain, last slot used
    for chain in chains:
        lower = 0
        opaque = any(step.opaque for step in chain.steps)
        keys = set().union(*(step.models for step in chain.steps)) if chain.steps else set()
        for previous, last in placed:
            prev_opaque = any(step.opaque for step in previous.steps)
            prev_keys = (
                set().union(*(s.models for s in previous.steps)) if previous.steps else set()
            )
            if opaque or prev_opaque or keys_conflict(keys, prev_keys):
                lower = max(lower, last)
        release = 1
        previous_slot = -1
        last_used = lower
        for step in chain.steps:
            release = max(release, step.release)
            if release > 1:
                step.release = release
                later.append(step)
                continue
            start = max(lower, previous_slot + 1 if step.separate else previous_slot, 0)
            index = _place(slots, step, start)
            previous_slot = index
            last_used = max(last_used, index)
        placed.append((chain, last_used))
    return [s for s in slots if s.steps], later


def _place(slots: list[Slot], step: Step, start: int) -> int:
    if step.opaque:
        # Only the last migration keeps the order of everything before it.
        if slots and len(slots) - 1 >= start and _accepts_opaque(slots[-1], step):
            slots[-1].add(step)
            return len(slots) - 1
    else:
        for index in range(start, len(slots)):
            if slots[index].accepts(step):
                slots[index].add(step)
                return index
    slot = Slot(atomic=step.atomic, data=step.data)
    slot.add(step)
    slots.append(slot)
    return len(slots) - 1


def _accepts_opaque(slot: Slot, step: Step) -> bool:
    return slot.atomic == step.atomic and slot.data == step.data and not (step.scans and slot.locks)
