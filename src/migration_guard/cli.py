"""``migration-guard``: what needs no Django project.

- ``migration-guard rules [RULE_ID]``: the rules, or one rule's documentation;
- ``migration-guard comment --report audit.json``: post or update the sticky
  pull/merge-request comment from a JSON report;
- ``migration-guard render --report audit.json --format sarif``: render a JSON
  report in another format without auditing again.

The audit itself is ``manage.py migration_audit`` (it needs the project).
Exit status: 0 done, 2 usage or environment error (the message says what to do).
"""

from __future__ import annotations

import difflib
import os
from typing import Any, NoReturn

import click

from . import __version__
from .exceptions import MigrationGuardError


class Failure(click.ClickException):
    """An error that ends the command with exit status 2 and one clear message."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        from .report.escaping import for_log

        click.echo(for_log(f"migration-guard: error: {self.format_message()}"), err=True)


def _fail(message: str) -> NoReturn:
    raise Failure(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migration-guard")
def main() -> None:
    """Zero-downtime safety for Django migrations on PostgreSQL.

    The audit runs in your project: `python manage.py migration_audit`. These
    commands work without it: list the rules, post the report as a pull/merge
    request comment, render a saved JSON report in another format.
    """


# -- rules -------------------------------------------------------------------------------


def _registry() -> dict[str, Any]:
    from . import rules

    return rules.registry()


@main.command()
@click.argument("rule_id", required=False)
def rules(rule_id: str | None) -> None:
    """List the rules, or print the documentation of RULE_ID."""
    registry = _registry()
    if rule_id is None:
        rows = [
            (rid, str(cls.severity), str(cls.category), cls.title())
            for rid, cls in sorted(registry.items())
        ]
        width = max((len(r[0]) for r in rows), default=4)
        click.echo(f"{'RULE':<{width}}  {'SEVERITY':<8}  {'CATEGORY':<13}  TITLE")
        for rid, severity, category, title in rows:
            click.echo(f"{rid:<{width}}  {severity:<8}  {category:<13}  {title}")
        click.echo(
            f"\n{len(rows)} rules. `migration-guard rules RULE_ID` prints one's documentation."
        )
        return
    cls = registry.get(rule_id)
    if cls is None:
        close = difflib.get_close_matches(rule_id, registry, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        _fail(f"unknown rule {rule_id!r}.{hint} `migration-guard rules` lists them all.")
    from .report.sarif import help_uri

    click.echo(f"{rule_id}: {cls.title()}")
    click.echo(f"severity: {cls.severity}, category: {cls.category}")
    click.echo("")
    documentation = cls.documentation()
    if documentation:
        click.echo(documentation)
        click.echo("")
    click.echo(f"Documentation: {help_uri(rule_id)}")


# -- comment -----------------------------------------------------------------------------


@main.command()
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The JSON report (`migration_audit --format json --output FILE`).",
)
@click.option(
    "--platform",
    type=click.Choice(["github", "gitlab"]),
    help="Where to post (default: from GITHUB_ACTIONS / GITLAB_CI).",
)
@click.option(
    "--pr",
    "number",
    type=int,
    help="Pull request number / merge request IID (default: from the CI environment).",
)
@click.option(
    "--repo",
    "project",
    help="GitHub OWNER/NAME or GitLab project id or path (default: GITHUB_REPOSITORY / "
    "CI_PROJECT_ID).",
)
@click.option(
    "--api-url", help="API base URL (default: GITHUB_API_URL or api.github.com / CI_API_V4_URL)."
)
@click.option(
    "--report-url",
    help="Link to the full report, used when the comment is cut at the platform's size "
    "limit (default: the CI run or job URL).",
)
@click.option(
    "--always",
    is_flag=True,
    help="Post even when the report is clean and no earlier comment exists.",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=200),
    help="Cut the comment at this many characters (default and maximum: the platform's limit).",
)
def comment(
    report_path: str,
    platform: str | None,
    number: int | None,
    project: str | None,
    api_url: str | None,
    report_url: str | None,
    always: bool,
    max_length: int | None,
) -> None:
    """Post the report as ONE sticky pull/merge-request comment, or update it.

    \b
    GitHub: GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH (the pull request
            number), GITHUB_API_URL.
    GitLab: MIGRATION_GUARD_GITLAB_TOKEN (or GITLAB_TOKEN; a token with the api
            scope), CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID.
    """
    from .comment import post_report, read_report, target_from_env

    try:
        report = read_report(report_path)
        target = target_from_env(
            os.environ,
            platform=platform,
            number=number,
            project=project,
            api_url=api_url,
            report_url=report_url,
            max_chars=max_length,
        )
        outcome = post_report(report, target, always=always)
    except MigrationGuardError as exc:
        _fail(str(exc))
    click.echo(outcome.describe())


# -- render ------------------------------------------------------------------------------


def _format_names() -> list[str]:
    from .report import formats

    return formats()


@main.command()
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The JSON report (`migration_audit --format json --output FILE`).",
)
@click.option(
    "--format",
    "fmt",
    default="markdown",
    show_default=True,
    type=click.Choice(["text", "json", "sarif", "github", "gitlab", "markdown"]),
    help="Output format.",
)
@click.option("--output", "-o", default="-", help="Write to this file ('-': stdout).")
@click.option("--report-url", help="Link to the full report (markdown).")
def render(report_path: str, fmt: str, output: str, report_url: str | None) -> None:
    """Render a saved JSON report in another format, without auditing again."""
    from .comment import read_report
    from .report import RenderOptions
    from .report import render as render_report

    if fmt not in _format_names():  # pragma: no cover - every listed format is built in
        _fail(f"unknown format {fmt!r}")
    try:
        report = read_report(report_path)
    except MigrationGuardError as exc:
        _fail(str(exc))
    text = render_report(report, fmt, RenderOptions(report_url=report_url))
    if output == "-":
        if fmt == "text":  # names and messages of the merge request: no workflow command
            from .report.escaping import stop_commands

            text = stop_commands(text, os.environ)
        click.echo(text, nl=False)
    else:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror or exc}")
        click.echo(f"wrote {fmt} report to {output}", err=True)
