"""Where the comment goes: GitHub pull requests and GitLab merge requests.

Each platform lists the comments of one pull/merge request (following its
pagination), creates one, and updates one; and explains its API's errors in
terms of what to change in the CI job.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Iterator
from typing import ClassVar

from .http import ApiError, HttpClient

#: Safety bound on pages of comments read (100 comments a page).
MAX_PAGES = 200


@dataclasses.dataclass(frozen=True)
class Comment:
    id: int
    body: str
    url: str | None = None


class Platform:
    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    #: Longest comment body the platform accepts, in characters.
    limit: ClassVar[int] = 0
    #: How a pull/merge request is written (``#12`` / ``!12``).
    sigil: ClassVar[str] = "#"

    def __init__(self, http: HttpClient, project: str, number: int) -> None:
        self.http = http
        self.project = project
        self.number = number

    @property
    def where(self) -> str:
        return f"{self.sigil}{self.number} in {self.project}"

    def comments(self) -> Iterator[Comment]:
        raise NotImplementedError

    def create(self, body: str) -> Comment:
        raise NotImplementedError

    def update(self, comment: Comment, body: str) -> Comment:
        raise NotImplementedError

    def explain(self, error: ApiError) -> str:
        raise NotImplementedError


_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header."""
    if not header:
        return None
    for part in header.split(","):
        match = _LINK_NEXT.search(part)
        if match:
            return match.group(1).strip()
    return None


class GitHub(Platform):
    name = "github"
    label = "GitHub"
    limit = 65536
    sigil = "#"

    def comments(self) -> Iterator[Comment]:
        url: str | None = self.http.url(
            f"/repos/{self.project}/issues/{self.number}/comments", per_page=100
        )
        pages = 0
        while url and pages < MAX_PAGES:
            response = self.http.request("GET", url)
            pages += 1
            for item in response.data or ():
                yield _github_comment(item)
            url = next_link(response.header("Link"))
            if url and not self.http.same_origin(url):
                url = None  # never send the token to another host

    def create(self, body: str) -> Comment:
        url = self.http.url(f"/repos/{self.project}/issues/{self.number}/comments")
        response = self.http.request("POST", url, {"body": body}, idempotent=False)
        return _github_comment(response.data)

    def update(self, comment: Comment, body: str) -> Comment:
        url = self.http.url(f"/repos/{self.project}/issues/comments/{comment.id}")
        return _github_comment(self.http.request("PATCH", url, {"body": body}).data)

    def explain(self, error: ApiError) -> str:
        if error.status == 401:
            return (
                "GitHub rejected the token (401 Bad credentials): GITHUB_TOKEN is missing, "
                "expired or wrong. Pass it to the step: `env: GITHUB_TOKEN: "
                "${{ secrets.GITHUB_TOKEN }}`."
            )
        if error.status == 403:
            return (
                f"GitHub refused to {_action(error)} on pull request {self.where} (403 "
                f"Forbidden: {error.detail}). Give the job `permissions: pull-requests: write`; "
                "for pull requests from forks the token is read-only, so post the comment "
                "from a `workflow_run` workflow instead."
            )
        if error.status == 404:
            return (
                f"GitHub found no pull request {self.where} (404 Not Found): check --pr or the "
                "event's pull request, GITHUB_REPOSITORY (or --repo), and that the token can "
                "see the repository."
            )
        return (
            f"GitHub rejected the request to {_action(error)} on pull request {self.where} "
            f"({error.status}: {error.detail})."
        )


def _github_comment(item: object) -> Comment:
    if not isinstance(item, dict) or "id" not in item:
        raise ValueError("unexpected answer from GitHub: no comment id")
    return Comment(id=int(item["id"]), body=str(item.get("body") or ""), url=item.get("html_url"))


class GitLab(Platform):
    name = "gitlab"
    label = "GitLab"
    limit = 1_000_000
    sigil = "!"

    @property
    def _base(self) -> str:
        project = urllib.parse.quote(self.project, safe="")
        return f"/projects/{project}/merge_requests/{self.number}/notes"

    def comments(self) -> Iterator[Comment]:
        page: str | None = "1"
        pages = 0
        while page and pages < MAX_PAGES:
            url = self.http.url(
                self._base, per_page=100, page=page, sort="asc", order_by="created_at"
            )
            response = self.http.request("GET", url)
            pages += 1
            for item in response.data or ():
                if isinstance(item, dict) and not item.get("system"):
                    yield _gitlab_note(item)
            page = (response.header("X-Next-Page") or "").strip() or None

    def create(self, body: str) -> Comment:
        url = self.http.url(self._base)
        return _gitlab_note(self.http.request("POST", url, {"body": body}, idempotent=False).data)

    def update(self, comment: Comment, body: str) -> Comment:
        url = self.http.url(f"{self._base}/{comment.id}")
        return _gitlab_note(self.http.request("PUT", url, {"body": body}).data)

    def explain(self, error: ApiError) -> str:
        if error.status == 401:
            return (
                "GitLab rejected the token (401 Unauthorized): MIGRATION_GUARD_GITLAB_TOKEN "
                "(or GITLAB_TOKEN) is missing, expired or revoked. Use a project access token "
                "with the `api` scope, stored as a masked CI/CD variable."
            )
        if error.status == 403:
            return (
                f"GitLab refused to {_action(error)} on merge request {self.where} (403 "
                f"Forbidden: {error.detail}). The token needs the `api` scope and a role "
                "that may comment on merge requests (Reporter or above)."
            )
        if error.status == 404:
            return (
                f"GitLab found no merge request {self.where} (404 Not Found): check "
                "CI_MERGE_REQUEST_IID (set only in merge request pipelines) or --pr, "
                "CI_PROJECT_ID (or --repo), and that the token can see the project."
            )
        return (
            f"GitLab rejected the request to {_action(error)} on merge request {self.where} "
            f"({error.status}: {error.detail})."
        )


def _gitlab_note(item: object) -> Comment:
    if not isinstance(item, dict) or "id" not in item:
        raise ValueError("unexpected answer from GitLab: no note id")
    return Comment(id=int(item["id"]), body=str(item.get("body") or ""))


def _action(error: ApiError) -> str:
    return {
        "GET": "read the comments",
        "POST": "create the comment",
        "PATCH": "update the comment",
        "PUT": "update the comment",
    }.get(error.method, "post the comment")


PLATFORMS: dict[str, type[Platform]] = {"github": GitHub, "gitlab": GitLab}
