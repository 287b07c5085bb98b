"""Every line the deploy guard logs or stops with, in one place.

docs/deploy.md explains each under its tag (the words before the first colon);
``tests/test_deploy_docs.py`` fails when a tag is missing there. Lines go to
the ``migration_guard`` logger: on stderr as ``migration_guard: <line>`` unless
the project's LOGGING configures that logger.
"""

from __future__ import annotations

#: A statement (or a whole atomic migration) waited for a lock longer than its lock_timeout.
LOCK_TIMEOUT = (
    "lock timeout: {unit} waited {timeout} for a lock (attempt {attempt} of {attempts}) "
    "at: {statement}"
)
#: One per backend that was in the way.
BLOCKED_BY = "blocked by {blocker}"
#: The wait ended before the watcher sampled it, or the watcher could not connect.
BLOCKED_BY_UNKNOWN = "blocked by: not seen ({why})"
#: Pre-flight found old transactions holding conflicting locks: the statement was not sent.
PREFLIGHT = (
    "pre-flight: {unit} did not queue {what} behind {count} transaction(s) older than {age} "
    "holding conflicting locks on {table} (attempt {attempt} of {attempts})"
)
#: What was undone, and when the next attempt comes.
RETRY_ATOMIC = (
    "retrying: {unit} rolled back, nothing of it applied, no lock held; attempt {attempt} of "
    "{attempts} in {pause} with lock_timeout {timeout}"
)
RETRY_STATEMENT = (
    "retrying: {unit} statement {index} in {pause} with lock_timeout {timeout} (attempt {attempt} "
    "of {attempts}); the {done} statement(s) before it stay done and are not repeated"
)
#: A failed CREATE INDEX CONCURRENTLY / REINDEX CONCURRENTLY left an INVALID index: dropped.
DROPPED_INVALID = "dropped INVALID index: {index} on {table}, left by {why}"
DROP_INVALID_FAILED = (
    "INVALID index not dropped: {index} on {table} ({error}); it is dropped before the next build"
)
#: Appended to a stop message when a failed build's INVALID index could not be dropped.
INVALID_LEFT = (
    "The INVALID index(es) {names} could not be dropped yet: the next migrate drops them "
    "before it builds again."
)
#: The unit went through after one or more lock timeouts.
APPLIED_AFTER_RETRY = "applied after retry: {unit} on attempt {attempt} of {attempts}"
#: transaction_timeout is configured but the server predates it.
TRANSACTION_TIMEOUT_UNSUPPORTED = (
    "transaction_timeout: not set: it needs PostgreSQL 17 or later and this server is "
    "{version}; atomic migrations are bounded by statement_timeout and lock_timeout only"
)

# -- the messages migrate stops with (CommandError) --------------------------------------
GAVE_UP_ATOMIC = (
    "gave up: {unit} could not get its locks in {attempts} attempt(s) (lock_retries = "
    "{retries}). Nothing of it is applied and it is not recorded in django_migrations; the "
    "migrations before it are applied. The 'blocked by' lines above name the transactions in "
    "the way: let them finish (or end them), then run migrate again."
)
GAVE_UP_STATEMENT = (
    "gave up: {unit} statement {index} could not get its locks in {attempts} attempt(s) "
    "(lock_retries = {retries}); it is not applied, the {done} statement(s) before it are. "
    "The migration is not recorded: migrate runs it again from its first statement, so its "
    "statements must be safe to repeat (IF NOT EXISTS / IF EXISTS). The 'blocked by' lines "
    "above name the transactions in the way."
)
NOT_RETRIED = (
    "not retried: {unit} hit lock_timeout inside a transaction it opened itself (BEGIN in "
    "RunSQL, or transaction.atomic in RunPython code), which cannot be resumed; that "
    "transaction is rolled back, the {done} statement(s) before it are done. See the "
    "'blocked by' lines above, then run migrate again."
)
STATEMENT_TIMEOUT = (
    "statement_timeout: {unit} statement {index} ran longer than statement_timeout "
    "({timeout}) and was ended: {statement}. {undone} Raise statement_timeout for this "
    "deploy (--statement-timeout) or run the long step outside it."
)
UNDONE_ATOMIC = "Nothing of the migration is applied and it is not recorded."
UNDONE_NON_ATOMIC = (
    "The statements before it are done; the migration is not recorded (an INVALID index a "
    "concurrent build left is dropped, here or before the next build)."
)
TRANSACTION_TIMEOUT_ENDED = (
    "transaction_timeout: {unit} kept a transaction open longer than transaction_timeout "
    "({timeout}) and PostgreSQL ended the session. {undone} Raise transaction_timeout "
    "(--transaction-timeout) or split the migration."
)
INTERRUPTED = "interrupted: signal {signum} {where}"
INTERRUPTED_PAUSE = (
    "during the pause before retrying {unit}: no lock is held, no transaction is open, "
    "and {unit} is not recorded"
)
INTERRUPTED_OTHER = (
    "while migrating: a statement in progress was cancelled and the session closed, so "
    "PostgreSQL rolled back any open transaction; the migration in progress is not recorded"
)

#: Tags (words before the first colon) docs/deploy.md must explain.
TAGS = (
    "lock timeout",
    "blocked by",
    "pre-flight",
    "retrying",
    "dropped INVALID index",
    "INVALID index not dropped",
    "applied after retry",
    "transaction_timeout",
    "gave up",
    "not retried",
    "statement_timeout",
    "interrupted",
)

#: Every whole line (the rest are parts of lines); each starts with one of TAGS.
LINES = (
    LOCK_TIMEOUT,
    BLOCKED_BY,
    BLOCKED_BY_UNKNOWN,
    PREFLIGHT,
    RETRY_ATOMIC,
    RETRY_STATEMENT,
    DROPPED_INVALID,
    DROP_INVALID_FAILED,
    APPLIED_AFTER_RETRY,
    TRANSACTION_TIMEOUT_UNSUPPORTED,
    TRANSACTION_TIMEOUT_ENDED,
    GAVE_UP_ATOMIC,
    GAVE_UP_STATEMENT,
    NOT_RETRIED,
    STATEMENT_TIMEOUT,
    INTERRUPTED,
)
