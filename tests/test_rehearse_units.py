"""The rehearsal's parts on their own: values, scaling, sizes, which models render."""

from __future__ import annotations

import dataclasses
import decimal
import math
import random

import pytest
from django.db import models
from django.db.migrations.state import ModelState, ProjectState
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.conf import Config
from migration_guard.rehearse import configured_lock_timeout
from migration_guard.rehearse.measure import INDEX, REWRITE, SCAN, estimate
from migration_guard.rehearse.session import previous_models, seed_sizes
from migration_guard.rehearse.values import NoValue, Values, skipped
from migration_guard.rehearse.workload import Sample, error_text

# --- what the previous release writes ------------------------------------------------------


@given(length=st.integers(min_value=1, max_value=300), count=st.integers(1, 30))
def test_text_fits_its_column_and_differs_each_time(length, count):
    values = Values(random.Random(1), "rh3")
    field = models.CharField(max_length=length)
    field.set_attributes_from_name("code")
    made = [values.of_type(field) for _ in range(count)]
    assert all(len(v) <= length for v in made)
    if length >= 10:  # room for the counter: unique, as a unique column needs
        assert len(set(made)) == count


@given(digits=st.integers(1, 20), places=st.integers(0, 6))
def test_decimals_fit_their_precision_and_stay_positive(digits, places):
    field = models.DecimalField(max_digits=digits + places, decimal_places=places)
    field.set_attributes_from_name("amount")
    value = Values(random.Random(digits), "rh").of_type(field)
    assert isinstance(value, decimal.Decimal)
    assert value >= 1 and value.as_tuple().exponent == -places
    assert len(value.as_tuple().digits) <= digits + places


def test_numbers_are_small_and_positive_unless_unique():
    values = Values(random.Random(2), "rh")
    plain = models.IntegerField()
    plain.set_attributes_from_name("qty")
    unique = models.IntegerField(unique=True)
    unique.set_attributes_from_name("number")
    assert all(1 <= values.of_type(plain) <= 999 for _ in range(50))
    assert all(values.of_type(unique) >= 1_000_000 for _ in range(50))


def test_defaults_and_choices_come_first_and_db_defaults_are_left_out():
    values = Values(random.Random(3), "rh")
    status = models.CharField(max_length=10, choices=[("new", "New"), ("old", "Old")])
    status.set_attributes_from_name("status")
    assert values.of_type(status) == "new"
    counted = models.IntegerField(default=7)
    assert values.default(counted) == 7
    if hasattr(models.Field(), "db_default"):  # Django 5.0+
        assert skipped(models.IntegerField(db_default=3))
    assert not skipped(counted)


def test_an_unknown_type_has_no_value_unless_nullable():
    class Point(models.Field):
        def get_internal_type(self) -> str:
            return "PointField"

    values = Values(random.Random(4), "rh")
    strict = Point()
    strict.set_attributes_from_name("where")
    with pytest.raises(NoValue, match="no value for where"):
        values.of_type(strict)
    loose = Point(null=True)
    loose.set_attributes_from_name("where")
    assert values.of_type(loose) is None


# --- what is measured -----------------------------------------------------------------------


def test_a_query_that_gave_up_waiting_is_a_wait_not_a_failure():
    timed_out = Sample("t", "insert", "during", 0.0, 61.0, "ERROR: ...", "55P03")
    rejected = Sample("t", "insert", "during", 0.0, 0.01, "ERROR: ...", "23502")
    python = Sample("t", "insert", "during", 0.0, 0.01, "no value", None, database=False)
    duplicate = Sample("t", "insert", "during", 0.0, 0.01, "ERROR: ...", "23505")
    assert timed_out.gave_up and not timed_out.failed
    assert rejected.failed and not rejected.gave_up
    assert not python.failed
    # the workload's made-up values colliding: noted, not a failure of the previous release
    assert duplicate.duplicate and not duplicate.failed and not duplicate.gave_up


def test_the_error_is_postgresql_s_primary_message_and_sqlstate():
    class Diag:
        message_primary = 'null value in column "level" of relation "t"'
        severity = "ERROR"
        sqlstate = "23502"

    cause = Exception("psycopg's error")
    cause.diag = Diag()  # type: ignore[attr-defined]
    wrapper = Exception("Django's IntegrityError")
    wrapper.__cause__ = cause
    assert error_text(wrapper) == (
        'ERROR: null value in column "level" of relation "t" (SQLSTATE 23502)',
        "23502",
    )


@given(
    rehearsed=st.integers(2, 100_000),
    production=st.integers(2, 10**9),
    ms=st.floats(0.1, 10_000),
)
def test_estimates_scale_linearly_or_n_log_n(rehearsed, production, ms):
    scan = estimate((SCAN, ms), rehearsed, production)
    index = estimate((INDEX, ms), rehearsed, production)
    assert scan is not None and index is not None
    assert scan.scaling == "linear" and index.scaling == "n log n"
    assert math.isclose(scan.seconds, ms / 1000 * production / rehearsed, rel_tol=1e-9)
    if production > rehearsed:
        assert index.seconds >= scan.seconds  # n log n grows faster
        assert math.isclose(
            index.seconds,
            ms / 1000 * production * math.log(production) / (rehearsed * math.log(rehearsed)),
            rel_tol=1e-9,
        )


def test_no_estimate_without_work_or_production_size():
    assert estimate(None, 1000, 10**6) is None
    assert estimate((REWRITE, 5.0), 1000, None) is None


# --- sizes and models --------------------------------------------------------------------------


@dataclasses.dataclass
class _Table:
    rows: int


class _Stats:
    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = rows

    def table(self, name: str):
        return _Table(self.rows[name]) if name in self.rows else None


def test_production_sizes_are_scaled_down_to_the_ceiling_keeping_their_ratios():
    sizes = seed_sizes(_Stats({"orders": 10_000_000, "users": 1_000_000, "empty": 0}), 100_000)
    assert sizes(["orders", "users", "empty", "unknown"]) == {
        "orders": 100_000,
        "users": 10_000,
        "empty": 0,
        "unknown": 100_000,
    }
    small = seed_sizes(_Stats({"orders": 5_000, "users": 20}), 100_000)
    assert small(["orders", "users"]) == {"orders": 5_000, "users": 20}  # never scaled up


def _state() -> ProjectState:
    state = ProjectState()
    state.add_model(ModelState("shop", "customer", [("id", models.BigAutoField(primary_key=True))]))
    state.add_model(
        ModelState(
            "shop",
            "order",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("customer", models.ForeignKey("shop.customer", on_delete=models.CASCADE)),
            ],
        )
    )
    state.add_model(
        ModelState(
            "blog",
            "post",
            [("id", models.BigAutoField(primary_key=True))],
            options={"db_table": "blog_entries"},
        )
    )
    return state


def test_only_the_models_of_the_tables_and_what_they_point_to_are_rendered():
    state = _state()
    assert previous_models(state, ["shop_order"]) == {("shop", "order"), ("shop", "customer")}
    assert previous_models(state, ["blog_entries"]) == {("blog", "post")}
    # a table no model names (an automatic many-to-many table): everything
    assert previous_models(state, ["shop_order_tags"]) == set(state.models)


def test_production_lock_timeout_comes_from_the_settings():
    assert configured_lock_timeout(Config(lock_timeout="5s"), "default") == "5s"
