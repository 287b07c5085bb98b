"""Escaping untrusted text for where it lands: Markdown, HTML, terminals and CI logs.

Migration names, paths, SQL, table names and messages come from the merge
request; in a ``workflow_run`` flow the whole JSON report does. Every renderer
passes such text through one of these functions, chosen by where the text
lands, never through a format string alone.

Markdown (the merge-request comment, rendered by GitHub's cmark-gfm and
GitLab's):

* :func:`md_text` for prose and table cells: every ASCII punctuation character
  is backslash-escaped, so no emphasis, link, image, autolink, HTML tag,
  entity, heading, list or table pipe can start; line breaks become ``<br>``
  (prose) or spaces (cells), so a value can never begin a line of its own;
* :func:`md_code` for an inline code span: fenced with more backticks than the
  value holds, on one line;
* :func:`fence` for a fenced code block: longer than any run of backticks in it;
* :func:`html_text` inside raw HTML (``<summary>``), where Markdown is not read.

Terminals and CI logs (the text report, stderr): :func:`one_line` shows control
characters (line breaks, escape sequences, bidirectional overrides) as visible
escapes; :func:`neutralise_commands` keeps any line from starting with ``::``,
which GitHub Actions would read as a workflow command; :func:`stop_commands`
wraps a block in ``::stop-commands::<random token>`` under GitHub Actions.
"""

from __future__ import annotations

import html
import re
import secrets
import urllib.parse
from collections.abc import Mapping

#: C0 and C1 controls, DEL, and Unicode line/paragraph separators and bidi controls.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_CONTROL_OR_NEWLINE = re.compile(_CONTROL.pattern[:-1] + "\n\t]")
#: What starts inline Markdown anywhere in a line: code, emphasis, links and images,
#: HTML and entities, table pipes, strikethrough, math, URL and e-mail autolinks.
#: (A value never starts a line: line breaks become ``<br>`` or spaces, so block
#: syntax such as ``#``, ``-`` or ``1.`` cannot start.)
_PUNCTUATION = re.compile(r"([\\`*_\[\]()<>!|~&:@$#])")
_WWW = re.compile(r"(?i)\b(www)\.")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# -- terminals and CI logs --------------------------------------------------------------------


def one_line(text: object) -> str:
    """``text`` on one line, every control character shown as an escape (``\\n``, ``\\e``)."""
    return _CONTROL_OR_NEWLINE.sub(_visible, str(text))


def printable(text: object) -> str:
    """``text`` with its line breaks kept and every other control character escaped."""
    value = _NEWLINES.sub("\n", str(text))
    return _CONTROL.sub(_visible, value).replace("\t", "    ")


def neutralise_commands(text: str) -> str:
    """No line of ``text`` starts (after blanks) with ``::``: a workflow command.

    The runner trims leading blanks before it looks for ``::``, so the first
    colon pair of such a line is broken up instead: ``: :``.
    """
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("::"):
            lines[index] = line[: len(line) - len(stripped)] + ": :" + stripped[2:]
    return "\n".join(lines)


def for_log(text: object) -> str:
    """Text for stderr or a terminal: control characters escaped, no workflow command."""
    return neutralise_commands(printable(text))


def stop_commands(text: str, env: Mapping[str, str]) -> str:
    """Under GitHub Actions, ``text`` wrapped so the runner reads no command inside it.

    The token is random per call, so nothing inside can end the block early.
    """
    if env.get("GITHUB_ACTIONS") != "true" or not text:
        return text
    token = secrets.token_hex(16)
    body = text if text.endswith("\n") else text + "\n"
    return f"::stop-commands::{token}\n{body}::{token}::\n"


# -- Markdown -------------------------------------------------------------------------------


def _flat(text: object, newline: str) -> str:
    value = _NEWLINES.sub("\n", str(text))
    value = _CONTROL.sub(" ", value).replace("\t", " ")
    return value.replace("\n", newline)


def md_text(text: object, *, newline: str = "<br>") -> str:
    """Prose or a table cell: literal text, whatever it holds (a ``www.`` autolink too)."""
    value = _NEWLINES.sub("\n", str(text))
    value = _CONTROL.sub(" ", value).replace("\t", " ")
    parts = [_WWW.sub(r"\1\\.", _PUNCTUATION.sub(r"\\\1", part)) for part in value.split("\n")]
    return newline.join(parts)


def md_cell(text: object) -> str:
    """One table cell: literal text on one row (pipes and backslashes escaped, line
    breaks as ``<br>``)."""
    return md_text(str(text).strip())


def md_code(text: object) -> str:
    """An inline code span holding ``text`` literally, on one line (not for table cells)."""
    value = _flat(text, " ")
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value[:1] in ("`", " ") or value[-1:] in ("`", " ") or not value else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code_block(text: object) -> str:
    """The content of a fenced code block: line breaks kept, other controls replaced."""
    value = _NEWLINES.sub("\n", str(text))
    return _CONTROL.sub(" ", value)


def html_text(text: object) -> str:
    """Text inside raw HTML (where Markdown is not read), on one line."""
    return html.escape(_flat(text, " "), quote=True)


def url_path(text: str) -> str:
    """A path segment of a URL, percent-encoded."""
    return urllib.parse.quote(text, safe="")


def uri_reference(path: str) -> str:
    """A relative URI reference for a file path (SARIF ``artifactLocation.uri``).

    Every character but unreserved ones and ``/`` is percent-encoded, ``:``
    included, so that no first segment can read as a scheme.
    """
    return urllib.parse.quote(path, safe="/")
