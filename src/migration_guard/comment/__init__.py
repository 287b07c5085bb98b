"""Post the audit as ONE sticky pull/merge-request comment, and keep it up to date.

``migration-guard comment --report audit.json`` reads the JSON report, renders
the Markdown comment, finds the comment that carries the hidden marker
(:data:`~migration_guard.report.markdown.MARKER`) and updates it, or creates
one. A later clean run updates the same comment to say so. Everything it needs
comes from the CI environment (see :func:`target_from_env`); the token is
never printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..report import RenderOptions
from ..report.markdown import MARKER, render_markdown
from ..results import AuditReport
from .http import ApiError, CommentError, HttpClient, RetryPolicy, Unconfirmed
from .load import ReportFormatError, read_report, report_from_dict
from .platforms import PLATFORMS, Comment, GitHub, Platform

__all__ = [
    "CommentError",
    "Outcome",
    "ReportFormatError",
    "Target",
    "post_report",
    "read_report",
    "report_from_dict",
    "target_from_env",
]

#: Variables the GitLab token is read from, first set wins.
GITLAB_TOKEN_VARIABLES = ("MIGRATION_GUARD_GITLAB_TOKEN", "GITLAB_TOKEN")
GITHUB_TOKEN_VARIABLES = ("GITHUB_TOKEN",)
DEFAULT_GITHUB_API = "https://api.github.com"


@dataclasses.dataclass(frozen=True)
class Target:
    """The pull/merge request to comment on, and how to reach it."""

    platform: str
    api_url: str
    project: str
    number: int
    token: str = dataclasses.field(repr=False)
    report_url: str | None = None
    #: Longest body to post; the platform's limit unless set.
    max_chars: int | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    #: created | updated | unchanged | skipped
    action: str
    comment: Comment | None
    #: The body was cut to fit the platform's limit.
    truncated: bool = False
    where: str = ""

    def describe(self) -> str:
        if self.action == "skipped":
            return (
                f"no findings and no earlier comment on {self.where}: nothing posted "
                "(--always posts anyway)"
            )
        assert self.comment is not None
        ref = self.comment.url or f"comment {self.comment.id}"
        cut = " (cut to fit the size limit)" if self.truncated else ""
        verb = {"created": "created", "updated": "updated", "unchanged": "left unchanged"}
        return f"{verb[self.action]} the migration audit comment on {self.where}: {ref}{cut}"


# -- where to post: the CI environment -----------------------------------------------------


def detect_platform(env: Mapping[str, str]) -> str:
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    raise CommentError(
        "cannot tell where to post: neither GITHUB_ACTIONS nor GITLAB_CI is set; "
        "pass --platform github or --platform gitlab"
    )


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first variable of ``names`` that is set; a token with a line break, a blank
    or another control character inside is refused without being shown."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            if any(ch.isspace() or not ch.isprintable() for ch in value):
                raise CommentError(
                    f"{name} holds a line break, a blank or another control character (its "
                    "value is not shown): set it again from the token, with nothing around it"
                )
            return value
    return None


def _github_pr(env: Mapping[str, str]) -> int:
    path = env.get("GITHUB_EVENT_PATH")
    event_name = env.get("GITHUB_EVENT_NAME", "unknown")
    if path:
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommentError(
                f"cannot read the event file GITHUB_EVENT_PATH ({exc.__class__.__name__}); "
                "pass --pr NUMBER"
            ) from None
        number = (event.get("pull_request") or {}).get("number")
        if number is None and (event.get("issue") or {}).get("pull_request"):
            number = event["issue"].get("number")
        if isinstance(number, int):
            return number
    raise CommentError(
        f"no pull request number: this run's event ({event_name}) is not about a pull "
        "request. Run the comment step on pull_request events only "
        "(`if: github.event_name == 'pull_request'`), or pass --pr NUMBER"
    )


def _report_url(platform: str, env: Mapping[str, str]) -> str | None:
    if platform == "github":
        server, repo, run = (
            env.get("GITHUB_SERVER_URL"),
            env.get("GITHUB_REPOSITORY"),
            env.get("GITHUB_RUN_ID"),
        )
        if server and repo and run:
            return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"
        return None
    return env.get("CI_JOB_URL") or None


def target_from_env(
    env: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    number: int | None = None,
    project: str | None = None,
    api_url: str | None = None,
    report_url: str | None = None,
    max_chars: int | None = None,
) -> Target:
    """The target from options (when given) and the CI environment; every missing
    piece is named with the variable or option that provides it."""
    env = os.environ if env is None else env
    platform = platform or detect_platform(env)
    if platform == "github":
        token = _first(env, GITHUB_TOKEN_VARIABLES)
        if not token:
            raise CommentError(
                "GITHUB_TOKEN is not set: add `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` "
                "to the step, and `permissions: pull-requests: write` to the job"
            )
        project = project or env.get("GITHUB_REPOSITORY")
        if not project:
            raise CommentError("GITHUB_REPOSITORY is not set: pass --repo OWNER/NAME")
        number = number if number is not None else _github_pr(env)
        api_url = api_url or env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API
    elif platform == "gitlab":
        token = _first(env, GITLAB_TOKEN_VARIABLES)
        if not token:
            raise CommentError(
                "no GitLab token: set MIGRATION_GUARD_GITLAB_TOKEN (or GITLAB_TOKEN) to a "
                "project access token with the `api` scope, as a masked CI/CD variable "
                "(CI_JOB_TOKEN cannot write merge request notes)"
            )
        project = project or env.get("CI_PROJECT_ID")
        if not project:
            raise CommentError("CI_PROJECT_ID is not set: pass --repo PROJECT_ID")
        if number is None:
            iid = env.get("CI_MERGE_REQUEST_IID", "").strip()
            if not iid.isdigit():
                raise CommentError(
                    "CI_MERGE_REQUEST_IID is not set: this is not a merge request pipeline. "
                    "Run the job with `rules: - if: $CI_PIPELINE_SOURCE == "
                    '"merge_request_event"`, or pass --pr IID'
                )
            number = int(iid)
        api_url = api_url or env.get("CI_API_V4_URL")
        if not api_url:
            raise CommentError("CI_API_V4_URL is not set: pass --api-url https://HOST/api/v4")
    else:
        raise CommentError(f"unknown platform {platform!r}: use github or gitlab")
    return Target(
        platform=platform,
        api_url=api_url.rstrip("/"),
        project=project,
        number=number,
        token=token,
        report_url=report_url or _report_url(platform, env),
        max_chars=max_chars,
    )


# -- posting ------------------------------------------------------------------------------


def platform_for(
    target: Target,
    *,
    sleep: Callable[[float], None] | None = None,
    now: Callable[[], float] | None = None,
    policy: RetryPolicy | None = None,
) -> Platform:
    cls = PLATFORMS[target.platform]
    if cls is GitHub:
        headers = {
            "Authorization": f"Bearer {target.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    else:
        headers = {"PRIVATE-TOKEN": target.token}
    http = HttpClient(
        service=cls.label,
        base_url=target.api_url,
        headers=headers,
        secret=target.token,
        policy=policy,
        sleep=sleep,
        now=now,
    )
    return cls(http, target.project, target.number)


def post_report(
    report: AuditReport,
    target: Target,
    *,
    always: bool = False,
    sleep: Callable[[float], None] | None = None,
    now: Callable[[], float] | None = None,
    policy: RetryPolicy | None = None,
) -> Outcome:
    """Create or update the one marked comment on ``target`` with ``report``."""
    platform = platform_for(target, sleep=sleep, now=now, policy=policy)
    limit = min(target.max_chars or platform.limit, platform.limit)
    options = RenderOptions(report_url=target.report_url)
    body = render_markdown(report, options)
    truncated = len(body) > limit
    if truncated:
        body = render_markdown(report, options, max_chars=limit)
    try:
        existing = _marked(platform)
        if existing is None:
            if not report.findings and not always:
                return Outcome("skipped", None, where=platform.where)
            return Outcome("created", _create(platform, body), truncated, platform.where)
        if existing.body == body:
            return Outcome("unchanged", existing, truncated, platform.where)
        return Outcome("updated", platform.update(existing, body), truncated, platform.where)
    except ApiError as exc:
        raise CommentError(platform.http.redact(platform.explain(exc))) from None
    except ValueError as exc:
        raise CommentError(platform.http.redact(str(exc))) from None


def _marked(platform: Platform) -> Comment | None:
    return next((c for c in platform.comments() if MARKER in c.body), None)


def _create(platform: Platform, body: str) -> Comment:
    """Create the comment once: after an answer that leaves it unknown whether the
    platform created it (a 502 after the write), look before posting again."""
    policy = platform.http.policy
    attempt = 0
    while True:
        try:
            return platform.create(body)
        except Unconfirmed as exc:
            if attempt >= policy.retries:
                raise CommentError(
                    f"{exc} {attempt + 1} times: the service has trouble; run the job again "
                    "later (it updates the comment if one was created)"
                ) from None
            platform.http.sleep(policy.backoff * 2**attempt)
            attempt += 1
            landed = _marked(platform)
            if landed is not None:
                return landed if landed.body == body else platform.update(landed, body)
