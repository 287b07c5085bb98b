"""``migration-guard comment``: one sticky comment, against a local GitHub/GitLab API.

:class:`FakeApi` is an ``http.server`` on 127.0.0.1 (port 0, a thread of the
test process) that implements the endpoints the command uses on both
platforms, with their pagination and errors, and records every request. No
request leaves the machine.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migration_guard.cli import main
from migration_guard.comment import CommentError, post_report, target_from_env
from migration_guard.comment.http import RetryPolicy
from migration_guard.report import render
from migration_guard.report.markdown import MARKER

from .test_report_formats import clean_report, sample_report
from .test_report_markdown import _many

GITHUB_TOKEN = "ghp_S3CRET-token-value"
GITLAB_TOKEN = "glpat-S3CRET-token-value"
REPO = "acme/shop"
PR = 7
PROJECT = "acme/shop"  # a project path: must be URL-encoded as one segment
MR = 3


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeApi:
    """GitHub issue comments and GitLab merge request notes, in memory."""

    def __init__(self) -> None:
        self.github: dict[tuple[str, int], list[dict[str, Any]]] = {(REPO, PR): []}
        self.gitlab: dict[tuple[str, int], list[dict[str, Any]]] = {(PROJECT, MR): []}
        self.requests: list[Recorded] = []
        #: (status, headers, body) served, in order, before normal handling.
        self.script: list[tuple[int, dict[str, str], Any]] = []
        self.page_size = 100
        self.next_id = 1000
        #: Overrides the host of GitHub's Link headers (to test cross-origin links).
        self.link_base: str | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, headers, body = api.handle(self.command, self.path, headers, raw)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- dispatch ---------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        split = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(split.query))
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(method, split.path, query, headers, body))
        if self.script:
            return self.script.pop(0)
        segments = [urllib.parse.unquote(s) for s in split.path.strip("/").split("/")]
        if segments[:2] == ["api", "v4"]:
            return self._gitlab(method, segments[2:], query, headers, body)
        return self._github(method, segments, query, headers, body)

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> tuple[list, bool, int]:
        size = min(int(query.get("per_page", 30)), self.page_size)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size : page * size]
        return chunk, page * size < len(items), page

    def _github(self, method, segments, query, headers, body):
        if headers.get("authorization") != f"Bearer {GITHUB_TOKEN}":
            return 401, {}, {"message": "Bad credentials"}
        # /repos/{owner}/{repo}/issues/{n}/comments  |  /repos/{owner}/{repo}/issues/comments/{id}
        if len(segments) == 6 and segments[0] == "repos" and segments[5] == "comments":
            key = (f"{segments[1]}/{segments[2]}", int(segments[4]))
            if key not in self.github:
                return 404, {}, {"message": "Not Found"}
            comments = self.github[key]
            if method == "GET":
                chunk, more, page = self._page(comments, query)
                extra = {}
                if more:
                    base = self.link_base or self.url
                    nxt = {**query, "page": str(page + 1)}
                    link = f"{base}/repos/{key[0]}/issues/{key[1]}/comments?"
                    extra["Link"] = f'<{link}{urllib.parse.urlencode(nxt)}>; rel="next"'
                return 200, extra, chunk
            if method == "POST":
                self.next_id += 1
                comment = {
                    "id": self.next_id,
                    "body": body["body"],
                    "html_url": f"https://github.example/{key[0]}/pull/{key[1]}"
                    f"#issuecomment-{self.next_id}",
                }
                comments.append(comment)
                return 201, {}, comment
        if len(segments) == 6 and segments[3:5] == ["issues", "comments"] and method == "PATCH":
            repo = f"{segments[1]}/{segments[2]}"
            for (owner_repo, _), comments in self.github.items():
                for comment in comments:
                    if owner_repo == repo and comment["id"] == int(segments[5]):
                        comment["body"] = body["body"]
                        return 200, {}, comment
            return 404, {}, {"message": "Not Found"}
        return 404, {}, {"message": "Not Found"}

    def _gitlab(self, method, segments, query, headers, body):
        if headers.get("private-token") != GITLAB_TOKEN:
            return 401, {}, {"message": "401 Unauthorized"}
        # projects/{id}/merge_requests/{iid}/notes[/{note_id}]
        if len(segments) >= 5 and segments[0] == "projects" and segments[4] == "notes":
            key = (segments[1], int(segments[3]))
            if key not in self.gitlab:
                return 404, {}, {"message": "404 Not found"}
            notes = self.gitlab[key]
            if len(segments) == 5 and method == "GET":
                chunk, more, page = self._page(notes, query)
                return (
                    200,
                    {"X-Next-Page": str(page + 1) if more else "", "X-Page": str(page)},
                    chunk,
                )
            if len(segments) == 5 and method == "POST":
                self.next_id += 1
                note = {"id": self.next_id, "body": body["body"], "system": False}
                notes.append(note)
                return 201, {}, note
            if len(segments) == 6 and method == "PUT":
                for note in notes:
                    if note["id"] == int(segments[5]):
                        note["body"] = body["body"]
                        return 200, {}, note
        return 404, {}, {"message": "404 Not found"}

    # -- helpers ------------------------------------------------------------------------------
    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def marked(self, platform: str = "github") -> list[dict[str, Any]]:
        store = self.github[(REPO, PR)] if platform == "github" else self.gitlab[(PROJECT, MR)]
        return [c for c in store if MARKER in c["body"]]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _no_proxy_and_no_ci_env(monkeypatch):
    """Requests to 127.0.0.1 never go through a proxy, and the machine's own CI
    variables (when the suite runs in CI) do not leak into these tests."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    for name in (
        "GITHUB_ACTIONS",
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "GITHUB_EVENT_PATH",
        "GITHUB_API_URL",
        "GITLAB_CI",
        "GITLAB_TOKEN",
        "CI_JOB_URL",
        "CI_MERGE_REQUEST_IID",
        "MIGRATION_GUARD_GITLAB_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def github_env(api: FakeApi, tmp_path: Path, *, pr: int = PR, token: str = GITHUB_TOKEN) -> dict:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": pr}}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": token,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_API_URL": api.url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "42",
    }


def gitlab_env(api: FakeApi, *, mr: int = MR, token: str = GITLAB_TOKEN) -> dict:
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": f"{api.url}/api/v4",
        "CI_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_IID": str(mr),
        "MIGRATION_GUARD_GITLAB_TOKEN": token,
        "CI_JOB_URL": "https://gitlab.example/acme/shop/-/jobs/99",
    }


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def post(report, env, **kwargs):
    sleeps = kwargs.pop("sleeps", None)
    if sleeps is None:
        sleeps = Sleeps()
    return post_report(
        report, target_from_env(env), sleep=sleeps, now=lambda: 1_000_000.0, **kwargs
    )


def save(report, tmp_path: Path) -> Path:
    path = tmp_path / "audit.json"
    path.write_text(render(report, "json"))
    return path


def run_cli(env: dict, *args: str):
    return CliRunner().invoke(main, ["comment", *args], env=env)


def other_comments(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "body": f"LGTM {n}", "html_url": f"u{n}"} for n in range(1, count + 1)]


# -- GitHub: create, update, clean again, cut --------------------------------------------------


def test_github_creates_one_comment(api, tmp_path):
    env = github_env(api, tmp_path)
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 0, result.output
    assert "created the migration audit comment on #7 in acme/shop" in result.output
    assert "https://github.example/acme/shop/pull/7#issuecomment-" in result.output
    assert api.calls() == [
        ("GET", "/repos/acme/shop/issues/7/comments"),
        ("POST", "/repos/acme/shop/issues/7/comments"),
    ]
    assert api.requests[0].query == {"per_page": "100"}
    headers = api.requests[1].headers
    assert headers["authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("django-migration-guard/")
    (comment,) = api.marked()
    assert comment["body"].startswith(MARKER)
    assert "Unsafe for a zero-downtime deploy" in comment["body"]
    assert GITHUB_TOKEN not in result.output


def test_github_updates_the_marked_comment_found_on_a_later_page(api, tmp_path):
    api.page_size = 2
    comments = other_comments(4)
    comments.insert(4, {"id": 77, "body": f"{MARKER}\nold report", "html_url": "u77"})
    comments.append({"id": 78, "body": "after", "html_url": "u78"})
    api.github[(REPO, PR)] = comments
    outcome = post(sample_report(), github_env(api, tmp_path))
    assert outcome.action == "updated"
    assert outcome.comment.id == 77
    assert api.calls() == [
        ("GET", "/repos/acme/shop/issues/7/comments"),
        ("GET", "/repos/acme/shop/issues/7/comments"),
        ("GET", "/repos/acme/shop/issues/7/comments"),
        ("PATCH", "/repos/acme/shop/issues/comments/77"),
    ]
    assert [r.query.get("page") for r in api.requests[:3]] == [None, "2", "3"]
    assert len(api.github[(REPO, PR)]) == 6, "no comment added"
    assert [c["body"] for c in api.github[(REPO, PR)] if c["id"] != 77] == [
        "LGTM 1",
        "LGTM 2",
        "LGTM 3",
        "LGTM 4",
        "after",
    ]
    assert "Unsafe for a zero-downtime deploy" in api.marked()[0]["body"]


def test_a_clean_run_updates_the_same_comment_to_say_so(api, tmp_path):
    env = github_env(api, tmp_path)
    assert post(sample_report(), env).action == "created"
    outcome = post(clean_report(), env)
    assert outcome.action == "updated"
    (comment,) = api.marked()
    assert "No unsafe operations" in comment["body"]
    assert "<details>" not in comment["body"]
    assert [m for m, _ in api.calls()].count("POST") == 1


def test_a_clean_first_run_posts_nothing_unless_always(api, tmp_path):
    env = github_env(api, tmp_path)
    outcome = post(clean_report(), env)
    assert outcome.action == "skipped"
    assert "nothing posted" in outcome.describe()
    assert api.marked() == []
    assert post(clean_report(), env, always=True).action == "created"
    assert len(api.marked()) == 1


def test_the_same_report_twice_leaves_the_comment_alone(api, tmp_path):
    env = github_env(api, tmp_path)
    post(sample_report(), env)
    outcome = post(sample_report(), env)
    assert outcome.action == "unchanged"
    assert [m for m, _ in api.calls()].count("PATCH") == 0


def test_a_comment_over_githubs_limit_is_cut_with_a_link_to_the_run(api, tmp_path):
    env = github_env(api, tmp_path)
    report = _many(400)
    assert len(render(report, "markdown")) > 65536
    outcome = post(report, env)
    assert outcome.action == "created" and outcome.truncated
    (comment,) = api.marked()
    assert len(comment["body"]) <= 65536
    assert comment["body"].startswith(MARKER)
    assert "cut to fit" in comment["body"]
    assert "(https://github.example/acme/shop/actions/runs/42)" in comment["body"]
    assert "(cut to fit the size limit)" in outcome.describe()


def test_report_url_option_and_max_length(api, tmp_path):
    env = github_env(api, tmp_path)
    args = ["--report", str(save(_many(30), tmp_path)), "--report-url", "https://ci.example/r/1"]
    result = run_cli(env, *args, "--max-length", "5000")
    assert result.exit_code == 0, result.output
    (comment,) = api.marked()
    assert len(comment["body"]) <= 5000
    assert "(https://ci.example/r/1)" in comment["body"]


def test_pagination_links_to_another_host_are_not_followed(api, tmp_path):
    api.page_size = 1
    api.github[(REPO, PR)] = other_comments(3)
    api.link_base = "http://127.0.0.2:9"
    post(sample_report(), github_env(api, tmp_path))
    gets = [c for c in api.calls() if c[0] == "GET"]
    assert len(gets) == 1, "the token never goes to another host"


# -- GitHub: where the PR number comes from -----------------------------------------------------


def test_pr_number_comes_from_the_event_or_the_option(api, tmp_path):
    env = github_env(api, tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps({"ref": "refs/heads/main"}))
    env["GITHUB_EVENT_NAME"] = "push"
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2
    assert "event (push) is not about a pull request" in result.output
    assert "--pr NUMBER" in result.output
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)), "--pr", str(PR))
    assert result.exit_code == 0, result.output
    assert len(api.marked()) == 1


def test_issue_comment_events_carry_the_pr_number(api, tmp_path):
    env = github_env(api, tmp_path)
    event = {"issue": {"number": PR, "pull_request": {"url": "x"}}}
    Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps(event))
    assert target_from_env(env).number == PR


# -- GitHub: errors ------------------------------------------------------------------------------


def assert_clear(exc: BaseException, *needles: str) -> None:
    text = str(exc)
    for needle in needles:
        assert needle in text, text
    assert GITHUB_TOKEN not in text and GITLAB_TOKEN not in text
    assert "Traceback" not in text


def test_bad_token_401(api, tmp_path):
    env = github_env(api, tmp_path, token="ghp_wrong-S3CRET")
    with pytest.raises(CommentError) as info:
        post(sample_report(), env)
    assert_clear(info.value, "401", "GITHUB_TOKEN", "secrets.GITHUB_TOKEN")
    assert "ghp_wrong-S3CRET" not in str(info.value)
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2
    assert result.output.startswith("migration-guard: error: GitHub rejected the token (401")
    assert "ghp_wrong-S3CRET" not in result.output


def test_forbidden_403(api, tmp_path):
    api.script = [(403, {}, {"message": "Resource not accessible by integration"})]
    with pytest.raises(CommentError) as info:
        post(sample_report(), github_env(api, tmp_path))
    assert_clear(
        info.value,
        "403",
        "Resource not accessible by integration",
        "permissions: pull-requests: write",
    )


def test_unknown_pr_404(api, tmp_path):
    env = github_env(api, tmp_path, pr=99)
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2
    assert "GitHub found no pull request #99 in acme/shop (404" in result.output
    assert GITHUB_TOKEN not in result.output


def test_rate_limited_429_waits_for_retry_after(api, tmp_path):
    api.script = [(429, {"Retry-After": "3"}, {"message": "slow down"})]
    sleeps = Sleeps()
    outcome = post(sample_report(), github_env(api, tmp_path), sleeps=sleeps)
    assert outcome.action == "created"
    assert sleeps == [3.0]
    assert [m for m, _ in api.calls()] == ["GET", "GET", "POST"]


def test_primary_rate_limit_waits_until_reset(api, tmp_path):
    reset = str(1_000_000 + 20)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    api.script = [(403, headers, {"message": "API rate limit exceeded"})]
    sleeps = Sleeps()
    assert post(sample_report(), github_env(api, tmp_path), sleeps=sleeps).action == "created"
    assert sleeps == [21.0]


def test_rate_limit_too_long_to_wait_fails_with_when_to_retry(api, tmp_path):
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(1_000_000 + 3600)}
    api.script = [(403, headers, {"message": "API rate limit exceeded"})]
    sleeps = Sleeps()
    with pytest.raises(CommentError) as info:
        post(sample_report(), github_env(api, tmp_path), sleeps=sleeps)
    assert_clear(info.value, "rate limit", "resets in about 3601 s", "run the job again")
    assert sleeps == []


def test_rate_limit_waits_are_bounded(api, tmp_path):
    api.script = [(429, {"Retry-After": "1"}, None)] * 10
    sleeps = Sleeps()
    with pytest.raises(CommentError, match="rate limit"):
        post(sample_report(), github_env(api, tmp_path), sleeps=sleeps)
    assert sleeps == [1.0, 1.0, 1.0]


def test_retry_after_as_an_http_date(api, tmp_path):
    import email.utils

    when = email.utils.formatdate(1_000_000 + 5, usegmt=True)
    api.script = [(429, {"Retry-After": when}, None)]
    sleeps = Sleeps()
    assert post(sample_report(), github_env(api, tmp_path), sleeps=sleeps).action == "created"
    assert sleeps == [5.0]


def test_secondary_rate_limit_403_without_headers_is_waited_out(api, tmp_path):
    message = "You have exceeded a secondary rate limit. Please wait a few minutes."
    api.script = [(403, {}, {"message": message})]
    sleeps = Sleeps()
    assert post(sample_report(), github_env(api, tmp_path), sleeps=sleeps).action == "created"
    assert sleeps == [60.0]


def test_server_error_then_success(api, tmp_path):
    api.script = [(500, {}, {"message": "boom"})]
    sleeps = Sleeps()
    assert post(sample_report(), github_env(api, tmp_path), sleeps=sleeps).action == "created"
    assert sleeps == [1.0]


def test_server_error_forever_gives_up_after_bounded_backoff(api, tmp_path, monkeypatch):
    api.script = [(502, {}, None)] * 20
    sleeps = Sleeps()
    with pytest.raises(CommentError) as info:
        post(sample_report(), github_env(api, tmp_path), sleeps=sleeps)
    assert_clear(info.value, "answered 502", "4 times", "run the job again later")
    assert sleeps == [1.0, 2.0, 4.0]
    # Through the CLI (real sleeping patched out): exit status 2 and the same message.
    api.script = [(500, {}, None)] * 20
    cli_sleeps = Sleeps()
    monkeypatch.setattr(time, "sleep", cli_sleeps)
    result = run_cli(github_env(api, tmp_path), "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2
    assert "GitHub answered 500 to GET /repos/acme/shop/issues/7/comments 4 times" in result.output
    assert cli_sleeps == [1.0, 2.0, 4.0]


def test_unreachable_api_is_retried_then_explained(tmp_path):
    api = FakeApi()
    url = api.url
    api.close()  # nothing listens there any more
    env = github_env(api, tmp_path)
    env["GITHUB_API_URL"] = url
    sleeps = Sleeps()
    with pytest.raises(CommentError) as info:
        post_report(
            sample_report(),
            target_from_env(env),
            sleep=sleeps,
            policy=RetryPolicy(timeout=5),
        )
    assert_clear(info.value, "cannot reach GitHub", "after 4 attempts")
    assert sleeps == [1.0, 2.0, 4.0]


def test_missing_token_and_platform_are_named(api, tmp_path):
    env = github_env(api, tmp_path)
    del env["GITHUB_TOKEN"]
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2 and "GITHUB_TOKEN is not set" in result.output
    result = run_cli({}, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2 and "--platform github or --platform gitlab" in result.output


def test_missing_report_file(api, tmp_path):
    result = run_cli(github_env(api, tmp_path), "--report", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "--format json --output" in result.output
    assert api.requests == []


def test_target_repr_hides_the_token(api, tmp_path):
    target = target_from_env(github_env(api, tmp_path))
    assert GITHUB_TOKEN not in repr(target)


# -- GitLab ----------------------------------------------------------------------------------------


def test_gitlab_creates_one_note(api, tmp_path):
    env = gitlab_env(api)
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 0, result.output
    assert "created the migration audit comment on !3 in acme/shop" in result.output
    assert api.calls() == [
        ("GET", "/api/v4/projects/acme%2Fshop/merge_requests/3/notes"),
        ("POST", "/api/v4/projects/acme%2Fshop/merge_requests/3/notes"),
    ]
    assert api.requests[0].query["per_page"] == "100"
    assert api.requests[1].headers["private-token"] == GITLAB_TOKEN
    assert "authorization" not in api.requests[1].headers
    (note,) = api.marked("gitlab")
    assert note["body"].startswith(MARKER)
    assert GITLAB_TOKEN not in result.output


def test_gitlab_updates_the_marked_note_across_pages(api, tmp_path):
    api.page_size = 2
    notes = [{"id": n, "body": f"note {n}", "system": False} for n in range(1, 4)]
    notes.insert(1, {"id": 50, "body": f"added 1 commit {MARKER}", "system": True})
    notes.append({"id": 60, "body": f"{MARKER}\nold", "system": False})
    api.gitlab[(PROJECT, MR)] = notes
    outcome = post(sample_report(), gitlab_env(api))
    assert outcome.action == "updated" and outcome.comment.id == 60
    assert [r.query.get("page") for r in api.requests if r.method == "GET"] == ["1", "2", "3"]
    assert api.calls()[-1] == ("PUT", "/api/v4/projects/acme%2Fshop/merge_requests/3/notes/60")
    assert "Unsafe" in next(n for n in notes if n["id"] == 60)["body"]
    assert next(n for n in notes if n["id"] == 50)["body"].startswith("added"), "system note"


def test_gitlab_clean_again_and_token_fallback(api, tmp_path):
    env = gitlab_env(api)
    del env["MIGRATION_GUARD_GITLAB_TOKEN"]
    env["GITLAB_TOKEN"] = GITLAB_TOKEN
    assert post(sample_report(), env).action == "created"
    assert post(clean_report(), env).action == "updated"
    (note,) = api.marked("gitlab")
    assert "No unsafe operations" in note["body"]


def test_gitlab_errors(api, tmp_path):
    with pytest.raises(CommentError) as info:
        post(sample_report(), gitlab_env(api, token="glpat-wrong"))
    assert_clear(info.value, "401", "MIGRATION_GUARD_GITLAB_TOKEN", "api")
    assert "glpat-wrong" not in str(info.value)
    with pytest.raises(CommentError) as info:
        post(sample_report(), gitlab_env(api, mr=99))
    assert_clear(info.value, "no merge request !99 in acme/shop (404", "CI_MERGE_REQUEST_IID")
    api.script = [(403, {}, {"message": "403 Forbidden"})]
    with pytest.raises(CommentError) as info:
        post(sample_report(), gitlab_env(api))
    assert_clear(info.value, "403", "`api` scope")


def test_gitlab_outside_a_merge_request_pipeline(api, tmp_path):
    env = gitlab_env(api)
    del env["CI_MERGE_REQUEST_IID"]
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2
    assert "CI_MERGE_REQUEST_IID is not set" in result.output
    assert "merge_request_event" in result.output


def test_gitlab_cut_at_its_own_limit(api, tmp_path):
    report = _many(400)
    outcome = post(report, gitlab_env(api))
    assert not outcome.truncated, "GitLab notes take 1,000,000 characters"
    env = gitlab_env(api)
    outcome = post_report(report, dataclasses.replace(target_from_env(env), max_chars=10_000))
    assert outcome.truncated
    (note,) = api.marked("gitlab")
    assert len(note["body"]) <= 10_000
    assert "(https://gitlab.example/acme/shop/-/jobs/99)" in note["body"]
