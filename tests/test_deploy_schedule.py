"""The deploy guard without a database: timeouts, pauses, query text, wording, the watcher."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.deploy.blockers import Blocker, BlockerWatch, format_age, mask_query
from migration_guard.deploy.guard import sqlstate
from migration_guard.deploy.schedule import (
    JITTER,
    MAX_PAUSE_S,
    Schedule,
    duration_ms,
    format_ms,
    nominal_pause_s,
)

BACKOFF = st.one_of(
    st.sampled_from(["exponential", "linear", "constant"]),
    st.lists(st.floats(0.001, 120), min_size=1, max_size=5).map(tuple),
)


@given(st.floats(1, 600_000), st.integers(0, 50))
def test_timeouts_escalate_to_lock_timeout(ceiling, retries):
    schedule = Schedule(ceiling, retries)
    timeouts = [schedule.timeout_ms(k) for k in range(schedule.attempts)]
    assert all(t is not None and t >= 1 for t in timeouts)  # never 0: that is "no timeout"
    assert timeouts == sorted(timeouts)
    assert max(timeouts) <= round(ceiling) + 1
    assert timeouts[-1] in (round(ceiling), int(ceiling) + 1)  # the last attempt waits it all
    if retries and ceiling >= 80:
        assert timeouts[0] == pytest.approx(ceiling / 8, abs=1)


def test_timeouts_of_the_default_schedule():
    assert [Schedule(2000, 5).timeout_ms(k) for k in range(6)] == [250, 379, 574, 871, 1320, 2000]
    assert Schedule(2000, 0).timeout_ms(0) == 2000
    assert Schedule(None, 3).timeout_ms(1) is None
    with pytest.raises(ValueError, match="outside"):
        Schedule(2000, 3).timeout_ms(4)


@given(BACKOFF, st.integers(1, 40), st.integers(0, 2**32))
def test_pauses_stay_within_their_jitter(backoff, retry, seed):
    nominal = nominal_pause_s(backoff, retry)
    pause = Schedule(1000, 40, backoff).pause_s(retry, random.Random(seed))
    low, high = JITTER
    assert nominal * low <= pause <= nominal * high
    assert nominal <= MAX_PAUSE_S or isinstance(backoff, tuple)


@given(st.sampled_from(["exponential", "linear", "constant"]), st.integers(1, 40))
def test_named_backoffs_never_shrink(backoff, retry):
    assert nominal_pause_s(backoff, retry) <= nominal_pause_s(backoff, retry + 1)


def test_named_backoffs_and_lists():
    assert [nominal_pause_s("exponential", r) for r in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [nominal_pause_s("linear", r) for r in (1, 2, 12, 13)] == [5, 10, 60, 60]
    assert nominal_pause_s("constant", 7) == 5
    assert [nominal_pause_s((0.5, 3.0), r) for r in (1, 2, 3)] == [0.5, 3.0, 3.0]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250", 250),
        ("250ms", 250),
        ("2s", 2000),
        ("1.5 s", 1500),
        ("1min", 60_000),
        ("2h", 7_200_000),
        ("500us", 0.5),
        ("1d", 86_400_000),
    ],
)
def test_durations(text, ms):
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "2 seconds", "-1s", "1e3", "s", "5s; DROP TABLE x"])
def test_not_durations(text):
    with pytest.raises(ValueError, match="not a PostgreSQL duration"):
        duration_ms(text)


@given(st.floats(0.5, 86_400_000))
def test_formatted_durations_read_back(ms):
    """What the log says is a duration PostgreSQL accepts, close to the value."""
    text = format_ms(ms)
    assert duration_ms(text) == pytest.approx(ms, rel=0.05, abs=1)


# -- query text ---------------------------------------------------------------------------------
def test_mask_query_replaces_every_literal():
    assert (
        mask_query(
            "SELECT * FROM accounts WHERE email = 'ann@example.com' AND id = 42 "
            "AND token = E'x\\'y' AND body = $tag$secret$tag$ /* note 7 */ -- trailing"
        )
        == "SELECT * FROM accounts WHERE email = ? AND id = ? AND token = ? AND body = ?"
    )
    assert mask_query("SELECT $1, $2::int") == "SELECT $1, $2::int"  # server-side parameters
    assert mask_query('SELECT "col 1" FROM "T1"') == 'SELECT "col 1" FROM "T1"'
    assert mask_query(None) == ""


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="'"),
        min_size=6,
    )
)
def test_mask_query_never_shows_a_string_literal(secret):
    masked = mask_query(f"UPDATE t SET note = '{secret}' WHERE id = 1", limit=10_000)
    assert masked == "UPDATE t SET note = ? WHERE id = ?"


@given(st.text(max_size=400), st.integers(10, 200))
def test_mask_query_output_is_one_short_printable_line(text, limit):
    masked = mask_query(text, limit)
    assert len(masked) <= limit
    assert masked.isprintable()
    assert masked == masked.strip()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "unknown"),
        (0.25, "250 ms"),
        (4.21, "4.2 s"),
        (843, "14 min 3 s"),
        (7500, "2 h 5 min"),
    ],
)
def test_ages(seconds, text):
    assert format_age(seconds) == text


def test_blocker_lines():
    row = (
        4242,
        "reports-worker",
        "app",
        "idle in transaction",
        843.0,
        "SELECT 1 WHERE a = 'x'",
        "client backend",
    )
    assert Blocker.from_row(row).describe() == (
        "pid 4242: a 14 min 3 s transaction from reports-worker (idle in transaction, user app), "
        "query: SELECT ? WHERE a = ?"
    )
    nameless = (7, "", "app", "active", 1.5, "VACUUM inv_item", "client backend")
    assert Blocker.from_row(nameless).describe() == (
        "pid 7: a 1.5 s transaction from a client without application_name (active, user app), "
        "query: VACUUM inv_item"
    )
    autovacuum = (
        9,
        "",
        None,
        None,
        30.0,
        "autovacuum: VACUUM public.inv_item",
        "autovacuum worker",
    )
    assert (
        Blocker.from_row(autovacuum)
        .describe()
        .startswith("pid 9: a 30.0 s transaction from autovacuum worker (state unknown)")
    )
    prepared = (0, None, None, None, None, None, None)
    assert Blocker.from_row(prepared).describe().startswith("a prepared transaction (pid 0)")
    forged = (5, "evil\nmigration_guard: applied", "u", "idle", None, "SELECT\n1", None)
    line = Blocker.from_row(forged).describe()
    assert "\n" not in line
    assert (
        line
        == "pid 5: a session from evil migration_guard: applied (idle, user u), query: SELECT ?"
    )


def test_sqlstate_is_found_through_wrapping():
    class Driver(Exception):
        sqlstate = "55P03"

    def fail() -> None:
        try:
            raise Driver("lock timeout")
        except Driver as inner:
            raise RuntimeError("wrapped") from inner

    with pytest.raises(RuntimeError) as caught:
        fail()
    assert sqlstate(caught.value) == "55P03"
    assert sqlstate(ValueError()) is None


# -- the watcher, with a stand-in connection ------------------------------------------------------
class _Cursor:
    def __init__(self, conn):
        self.conn = conn
        self.rows = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        if "pg_backend_pid" in sql:
            self.rows = [(99,)]
        else:
            self.conn.samples.append(params[0])
            self.rows = [
                (4242, "reports-worker", "app", "idle in transaction", 3.0, "SELECT 1", None)
            ]

    def fetchone(self):
        return self.rows[0]

    def fetchall(self):
        return self.rows


class _Conn:
    def __init__(self):
        self.samples = []

    def cursor(self):
        return _Cursor(self)

    def close(self):
        pass


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def test_watcher_samples_long_statements_only_and_wakes_from_idle():
    conn = _Conn()
    watch = BlockerWatch(lambda: conn)
    watch.IDLE_AFTER_S = 0.05
    try:
        watch.start()
        # A short statement is never sampled.
        watch.arm(7, 0.05)
        assert watch.disarm() == []
        assert conn.samples == []
        # A statement that lasts several intervals is, and its blockers come back once.
        watch.arm(7, 0.02)
        assert _wait(lambda: len(conn.samples) >= 2)
        [blocker] = watch.disarm()
        assert (blocker.pid, blocker.application_name) == (4242, "reports-worker")
        assert watch.disarm() == []
        # After the idle sleep, arming wakes the thread again.
        time.sleep(0.2)
        before = len(conn.samples)
        watch.arm(8, 0.02)
        assert _wait(lambda: len(conn.samples) > before)
        assert conn.samples[-1] == 8
        assert watch.disarm()
    finally:
        watch.close()
