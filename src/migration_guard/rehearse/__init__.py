"""Rehearse the deploy: the previous release's traffic while each migration runs.

``migration_audit --rehearse`` does what a deploy does to the code still
running: while each migration of the change is applied to the scratch
database (with rows: the tables it touches are seeded), other connections send
the queries of the *previous* release, written through Django's ORM with the
models of the state before the change, at a set rate. What they suffer is
measured, per migration, operation and table: the longest wait, how many
queries waited longer than a threshold, every failure with PostgreSQL's error,
and whether the lock queue formed behind a migration that itself waited.

The judge turns the measurements into evidence and findings
(``observed-previous-release-failure``, ``observed-blocked-traffic``); this
package only measures.

* :mod:`.workload`: the queries, the worker threads and their connections;
* :mod:`.values`: what the previous release writes into each field;
* :mod:`.monitor`: a slow reader on each table, and who waits behind whom;
* :mod:`.measure`: samples folded per table, attributed to an operation,
  scaled to production's size;
* :mod:`.session`: what the engine calls, and the clean-up on every exit.

See docs/rehearsal.md for what is simulated and what is not.
"""

from __future__ import annotations

from .session import Rehearsal, configured_lock_timeout, open_rehearsal

__all__ = ["Rehearsal", "configured_lock_timeout", "open_rehearsal"]
