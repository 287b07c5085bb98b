"""Configuration: pyproject, Django settings, command line; every bad value named."""

from __future__ import annotations

import pytest

from migration_guard.conf import Config, build_config
from migration_guard.exceptions import ConfigurationError
from migration_guard.findings import Severity


def write_pyproject(tmp_path, body):
    path = tmp_path / "pyproject.toml"
    path.write_text(body)
    return path


def test_defaults():
    cfg = build_config({}, django_settings={}, use_pyproject=False)
    assert cfg == Config()
    assert cfg.fail_on is Severity.ERROR
    assert cfg.postgres == "auto"


def test_precedence_pyproject_then_settings_then_command_line(tmp_path):
    path = write_pyproject(
        tmp_path,
        "[tool.migration_guard]\n"
        'fail-on = "warning"\npostgres-version = 14\nbase_ref = "develop"\n',
    )
    cfg = build_config(
        {"postgres_version": 16},
        django_settings={"postgres_version": 15, "fail_on": "info"},
        pyproject=path,
    )
    assert cfg.postgres_version == 16  # command line
    assert cfg.fail_on is Severity.INFO  # settings over pyproject
    assert cfg.base_ref == "develop"  # pyproject, dashes or underscores


def test_rules_regraded_or_turned_off():
    cfg = build_config(
        {},
        django_settings={"rules": {"drop-index-non-concurrent": "error", "remove-field": "off"}},
        use_pyproject=False,
    )
    assert cfg.severity_for("drop-index-non-concurrent", Severity.WARNING) is Severity.ERROR
    assert cfg.severity_for("remove-field", Severity.ERROR) is None
    assert cfg.severity_for("set-not-null", Severity.ERROR) is Severity.ERROR


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fail_onn": "error"}, "unknown key 'fail_onn'; did you mean 'fail_on'"),
        ({"fail_on": "fatal"}, "fail_on: unknown severity 'fatal'"),
        ({"rules": {"add-index-nonconcurrent": "off"}}, "did you mean add-index-non-concurrent"),
        ({"rules": {"remove-field": "loud"}}, "rules.remove-field: unknown severity 'loud'"),
        ({"postgres": "cloud"}, "postgres must be one of auto, url, local, embedded, docker"),
        ({"postgres_version": "sixteen"}, "postgres_version must be a PostgreSQL major version"),
        ({"exclude_apps": "shop"}, "exclude_apps must be a list of strings"),
        ({"seed_rows": -1}, "seed_rows must be a whole number >= 0"),
        ({"trace": "yes"}, "trace must be true or false"),
        ({"lock_timeout": "5s'; DROP TABLE x; --"}, "lock_timeout must be a PostgreSQL duration"),
    ],
)
def test_bad_values_are_named(settings, message):
    with pytest.raises(ConfigurationError) as info:
        build_config({}, django_settings=settings, use_pyproject=False)
    assert message in str(info.value)
    assert "settings.MIGRATION_GUARD" in str(info.value)


def test_malformed_pyproject_is_named(tmp_path):
    path = write_pyproject(tmp_path, "[tool.migration_guard\nfail_on = 'error'\n")
    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        build_config({}, django_settings={}, pyproject=path)


def test_pyproject_section_must_be_a_table(tmp_path):
    path = write_pyproject(tmp_path, "[tool]\nmigration_guard = 3\n")
    with pytest.raises(ConfigurationError, match=r"\[tool.migration_guard\] must be a table"):
        build_config({}, django_settings={}, pyproject=path)


def test_bad_pyproject_value_names_the_file(tmp_path):
    path = write_pyproject(tmp_path, '[tool.migration_guard]\nfail_on = "sometimes"\n')
    with pytest.raises(ConfigurationError) as info:
        build_config({}, django_settings={}, pyproject=path)
    assert str(path) in str(info.value)


def test_settings_must_be_a_dict():
    with pytest.raises(ConfigurationError, match="must be a dict"):
        build_config({}, django_settings=["x"], use_pyproject=False)  # type: ignore[arg-type]
