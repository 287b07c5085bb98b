"""The deploy guard's settings: defaults, every bad value named with where it came from."""

from __future__ import annotations

import pytest

from migration_guard.conf import build_config
from migration_guard.deploy.settings import GuardSettings
from migration_guard.exceptions import ConfigurationError


def guard(settings=None, overrides=None):
    config = build_config(overrides or {}, django_settings=settings or {}, use_pyproject=False)
    return GuardSettings.from_config(config)


def test_defaults_leave_migrate_alone():
    settings = guard()
    assert settings == GuardSettings()
    assert not settings.active
    assert settings.lock_retries == 5
    assert settings.backoff == "exponential"
    assert settings.blocker_report is True


def test_the_issues_example():
    settings = guard(
        {
            "lock_timeout": "2s",
            "lock_retries": 10,
            "lock_retry_backoff": "exponential",
            "statement_timeout": "30min",
            "transaction_timeout": "1h",
            "blocker_report": True,
            "preflight_transaction_age": "5min",
        }
    )
    assert settings.active
    assert settings.lock_timeout_ms == 2000
    assert settings.lock_retries == 10
    assert settings.statement_timeout_ms == 1_800_000
    assert settings.transaction_timeout_ms == 3_600_000
    assert settings.preflight_age_s == 300
    assert settings.schedule.attempts == 11


@pytest.mark.parametrize(
    "key", ["statement_timeout", "transaction_timeout", "preflight_transaction_age"]
)
def test_each_of_these_alone_turns_the_guard_on(key):
    assert guard({key: "1h"}).active


def test_backoff_as_a_list_of_pauses_and_from_pyproject(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.migration_guard]\nlock-timeout = "1s"\nlock-retry-backoff = ["100ms", "2s"]\n'
    )
    config = build_config({}, django_settings={}, pyproject=path)
    assert GuardSettings.from_config(config).backoff == (0.1, 2.0)


def test_lock_timeout_zero_still_means_no_timeout():
    assert guard({"lock_timeout": "0"}).lock_timeout_ms is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lock_timeout": "2 seconds"}, "lock_timeout must be a PostgreSQL duration"),
        ({"statement_timeout": 30}, "statement_timeout must be a PostgreSQL duration"),
        ({"statement_timeout": "0"}, "statement_timeout must be a duration above zero"),
        ({"transaction_timeout": "1 hour"}, "transaction_timeout must be a PostgreSQL duration"),
        ({"preflight_transaction_age": "0s"}, "preflight_transaction_age must be a duration above"),
        ({"lock_timeout": "1s", "lock_retries": -1}, "lock_retries must be a whole number >= 0"),
        ({"lock_timeout": "1s", "lock_retries": True}, "lock_retries must be a whole number"),
        ({"lock_timeout": "1s", "lock_retries": "3"}, "lock_retries must be a whole number"),
        ({"lock_retry_backoff": "fibonacci"}, "lock_retry_backoff must be one of exponential"),
        ({"lock_retry_backoff": []}, "lock_retry_backoff must be one of exponential"),
        ({"lock_retry_backoff": ["1s", "soon"]}, "a non-empty list of pauses"),
        ({"blocker_report": "yes"}, "blocker_report must be true or false"),
        ({"lock_retrys": 3}, "unknown key 'lock_retrys'; did you mean 'lock_retries'"),
        ({"lock_retries": 3}, "lock_retries needs lock_timeout"),
        (
            {"lock_timeout": "5s", "statement_timeout": "5s"},
            "statement_timeout (5s) must be longer than lock_timeout (5s)",
        ),
        (
            {"lock_timeout": "5s", "transaction_timeout": "1s"},
            "transaction_timeout (1s) must be longer than lock_timeout (5s)",
        ),
    ],
)
def test_bad_values_are_named(settings, message):
    with pytest.raises(ConfigurationError) as info:
        guard(settings)
    assert message in str(info.value)
    assert str(info.value).startswith("settings.MIGRATION_GUARD: ")


def test_a_combination_names_the_place_of_the_value_at_fault(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.migration_guard]\nstatement_timeout = "1s"\n')
    with pytest.raises(ConfigurationError) as info:
        build_config({"lock_timeout": "2s"}, django_settings={}, pyproject=path)
    assert str(info.value).startswith(f"[tool.migration_guard] in {path}: statement_timeout (1s)")
    with pytest.raises(ConfigurationError) as info:
        build_config(
            {"lock_retries": 2}, django_settings={"blocker_report": False}, use_pyproject=False
        )
    assert str(info.value).startswith("command line: lock_retries needs lock_timeout")


def test_preflight_alone_may_be_retried():
    settings = guard({"preflight_transaction_age": "30s", "lock_retries": 3})
    assert settings.preflight_age_s == 30
    assert settings.schedule.timeout_ms(0) is None
