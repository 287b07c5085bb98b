"""The deploy guard: ``manage.py migrate`` that never queues production behind a lock.

With ``MIGRATION_GUARD["lock_timeout"]`` (and the other settings of
docs/deploy.md), the app's ``migrate`` command applies each migration so that:

* a lock request waits at most ``lock_timeout`` (escalating per attempt), then
  the attempt is undone and retried after a pause with jitter, up to
  ``lock_retries`` times (:mod:`.schedule`);
* an atomic migration is retried whole (rolled back, never half-applied, and
  recorded in ``django_migrations`` in the same transaction); a non-atomic one
  retries only the statement that timed out, after dropping an INVALID index
  a failed concurrent build left (:mod:`.guard`, :mod:`.executor`);
* every lock timeout names who was in the way, from ``pg_blocking_pids()``
  (:mod:`.blockers`).

Nothing here imports Django models at import time: ``conf`` imports
:mod:`.schedule`.
"""
