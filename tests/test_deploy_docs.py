"""docs/deploy.md stays in step with the deploy guard: settings, options, log lines, numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import load_command_class

from migration_guard.apps import DEPLOY_KEYS
from migration_guard.conf import Config
from migration_guard.deploy import errors, messages
from migration_guard.deploy.schedule import Schedule, format_ms, nominal_pause_s

DOC = (Path(__file__).resolve().parent.parent / "docs" / "deploy.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("tag", messages.TAGS)
def test_every_log_line_is_explained(tag):
    assert re.search(rf"^### .*`{re.escape(tag)}`", DOC, re.MULTILINE), f"no section for {tag!r}"
    assert f"{tag}:" in DOC or f"{tag} " in DOC  # and an example of it


def test_every_line_starts_with_a_tag_and_every_tag_has_a_line():
    for line in messages.LINES:
        assert line.startswith(messages.TAGS), line
    for tag in messages.TAGS:
        assert any(line.startswith(tag) for line in messages.LINES), tag


@pytest.mark.parametrize("key", DEPLOY_KEYS)
def test_every_setting_is_in_the_table(key):
    row = re.search(rf"^\| `{key}` \| (?P<default>[^|]+) \| (?P<option>[^|]+) \|", DOC, re.M)
    assert row, key
    default = getattr(Config(), key)
    if default is None:
        assert row["default"].strip() == "not set"
    else:
        expected = {True: "`true`", False: "`false`"}.get(
            default, f"`{default!r}`".replace("'", '"')
        )
        assert row["default"].strip() == expected


def test_every_option_of_migrate_is_documented():
    command = load_command_class("migration_guard", "migrate")
    parser = command.create_parser("manage.py", "migrate")
    group = next(g for g in parser._action_groups if g.title == "migration_guard deploy guard")
    options = [a.option_strings[0] for a in group._group_actions]
    assert len(options) == 8
    for option in options:
        assert f"`{option}`" in DOC, option


def test_the_schedule_table_is_what_the_schedule_does():
    schedule = Schedule(2000, 5)
    rows = re.findall(r"^\| (\d) \| ([\d.]+ m?s) \| (—|[\d.]+ s) \|$", DOC, re.M)
    assert len(rows) == 6
    for attempt, wait, pause in rows:
        k = int(attempt) - 1
        ms = schedule.timeout_ms(k)
        assert wait.replace(" ", "") == format_ms(ms), (attempt, wait)
        if k:
            assert pause == f"{nominal_pause_s('exponential', k):g} s"
    total = sum(nominal_pause_s("exponential", r) for r in range(1, 6))
    assert f"about {total:g} s of pauses" in DOC


def test_exit_statuses():
    section = DOC[DOC.index("| exit status |") :].split("\n\n", 1)[0]
    table = dict(re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.M))
    assert set(table) == {"0", "1", "2", str(errors.EXIT_BUSY)}
    assert "busy" in table[str(errors.EXIT_BUSY)]
    assert errors.EXIT_FAILED == 1 and "failed" in table["1"]
