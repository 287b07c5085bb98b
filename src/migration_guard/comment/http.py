"""A small JSON-over-HTTPS client on the standard library, for the platforms' REST APIs.

It retries what is worth retrying and gives up with a clear message:

- 5xx answers and network errors: bounded retries with exponential backoff;
- rate limits (429, or 403 with ``Retry-After`` / ``x-ratelimit-remaining: 0``):
  wait as told by ``Retry-After`` or GitHub's ``x-ratelimit-reset``, when the
  wait is short enough, else fail saying when to try again;
- other 4xx: raised as :class:`ApiError` for the platform to explain.

Sleeping and the clock are injectable so tests run fast. The token is sent
in a header, never in a URL, and is redacted from every message this module
produces; redirects are followed only to the API's own origin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.message
import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .. import __version__
from ..exceptions import MigrationGuardError

USER_AGENT = f"django-migration-guard/{__version__}"


class CommentError(MigrationGuardError):
    """The comment could not be posted; the message says what to do."""


class Unconfirmed(CommentError):
    """A request that must not be repeated blindly (a POST) failed in a way that leaves
    unknown whether the platform acted on it (a 5xx answer, a network error)."""


class ApiError(CommentError):
    """The platform answered a request with a client error (4xx)."""

    def __init__(self, message: str, *, status: int, method: str, path: str, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: email.message.Message
    data: Any

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    #: Retries after the first attempt, for 5xx answers and network errors.
    retries: int = 3
    #: First backoff in seconds; doubled at each retry (1, 2, 4...).
    backoff: float = 1.0
    #: Longest single wait for a rate limit, in seconds; longer waits fail instead.
    max_wait: float = 60.0
    #: Rate-limit waits before giving up.
    rate_limit_retries: int = 3
    timeout: float = 30.0


def origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower())


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only within the API's origin: the token goes nowhere else."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if origin(newurl) != origin(req.full_url):
            return None  # urllib then raises the 3xx as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpClient:
    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        secret: str,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **headers,
        }
        self._secret = secret
        self.policy = policy or RetryPolicy()
        # Looked up at call time by default, so tests can patch time.sleep / time.time.
        self.sleep = sleep if sleep is not None else (lambda seconds: time.sleep(seconds))
        self.now = now if now is not None else (lambda: time.time())
        self._opener = urllib.request.build_opener(_SameOriginRedirects())

    def __repr__(self) -> str:  # never show the headers (they hold the token)
        return f"HttpClient(service={self.service!r}, base_url={self.base_url!r})"

    # -- public -----------------------------------------------------------------------
    def url(self, path: str, **query: Any) -> str:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def same_origin(self, url: str) -> bool:
        return origin(url) == origin(self.base_url)

    def redact(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text

    def request(
        self, method: str, url: str, payload: Any = None, *, idempotent: bool = True
    ) -> Response:
        """Send one request (with retries); return the 2xx response or raise.

        A request that is not ``idempotent`` (creating a comment) is never
        repeated here: a 5xx answer or a network error raises
        :class:`Unconfirmed`, and the caller checks what happened before trying
        again.
        """
        errors = 0
        rate_waits = 0
        path = self._path(url)
        while True:
            try:
                response = self._send(method, url, payload)
            except _NetworkError as exc:
                if not idempotent:
                    raise Unconfirmed(
                        self.redact(
                            f"cannot reach {self.service} at {self.base_url} ({exc.reason})"
                        )
                    ) from None
                if errors < self.policy.retries:
                    self.sleep(self.policy.backoff * 2**errors)
                    errors += 1
                    continue
                raise CommentError(
                    self.redact(
                        f"cannot reach {self.service} at {self.base_url} ({exc.reason}) after "
                        f"{errors + 1} attempts: check the API URL and the network, then run "
                        "the job again"
                    )
                ) from None
            status = response.status
            if 200 <= status < 300:
                return response
            wait = self._rate_limit_wait(response)
            if wait is not None:
                if wait > self.policy.max_wait or rate_waits >= self.policy.rate_limit_retries:
                    raise CommentError(self._rate_limit_message(response, wait))
                self.sleep(wait)
                rate_waits += 1
                continue
            if status >= 500:
                if not idempotent:
                    raise Unconfirmed(
                        self.redact(f"{self.service} answered {status} to {method} {path}")
                    )
                if errors < self.policy.retries:
                    self.sleep(self.policy.backoff * 2**errors)
                    errors += 1
                    continue
                raise CommentError(
                    self.redact(
                        f"{self.service} answered {status} to {method} {path} "
                        f"{errors + 1} times: the service has trouble; run the job again later"
                    )
                )
            detail = self._detail(response)
            raise ApiError(
                self.redact(f"{self.service} answered {status} to {method} {path}: {detail}"),
                status=status,
                method=method,
                path=path,
                detail=detail,
            )

    # -- helpers ---------------------------------------------------------------------------
    def _path(self, url: str) -> str:
        return urllib.parse.urlsplit(url).path

    def _send(self, method: str, url: str, payload: Any) -> Response:
        data = None
        headers = dict(self._headers)
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.policy.timeout) as resp:
                body = resp.read()
                return Response(resp.status, resp.headers, _json(body))
        except urllib.error.HTTPError as exc:
            body = b""
            with contextlib.suppress(OSError):
                body = exc.read()
            headers_msg = exc.headers if exc.headers is not None else email.message.Message()
            return Response(exc.code, headers_msg, _json(body))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _NetworkError(str(reason) or exc.__class__.__name__) from None

    def _rate_limit_wait(self, response: Response) -> float | None:
        """Seconds to wait when ``response`` says we are rate limited, else None."""
        status = response.status
        retry_after = response.header("Retry-After")
        remaining = response.header("x-ratelimit-remaining")
        # GitHub's secondary rate limits answer 403 and may say so only in the message.
        says_so = status == 403 and "rate limit" in self._detail(response).lower()
        limited = status == 429 or (
            status == 403 and (retry_after is not None or remaining == "0" or says_so)
        )
        if not limited:
            return None
        if retry_after is not None:
            seconds = self._retry_after_seconds(retry_after)
            if seconds is not None:
                return seconds
        reset = response.header("x-ratelimit-reset")
        if reset is not None:
            try:
                return max(0.0, float(reset) - self.now()) + 1.0
            except ValueError:
                pass
        return 60.0

    def _retry_after_seconds(self, value: str) -> float | None:
        """``Retry-After`` is a number of seconds or an HTTP date."""
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - self.now())

    def _rate_limit_message(self, response: Response, wait: float) -> str:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.now() + wait))
        return (
            f"{self.service} rate limit reached ({response.status}): it resets in about "
            f"{wait:.0f} s (at {when}); run the job again then, or use a token with a higher "
            "limit"
        )

    def _detail(self, response: Response) -> str:
        data = response.data
        text = ""
        if isinstance(data, dict):
            text = str(data.get("message") or data.get("error") or "")
        elif isinstance(data, str):
            text = data
        text = " ".join(text.split())
        return text[:300] if text else "(no message)"


class _NetworkError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")[:1000]
