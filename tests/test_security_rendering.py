"""Untrusted text in reports: the injections of issue 11, items 6, 7 and SARIF URIs (10).

* Markdown/HTML (item 6): a report whose every string is hostile (as the JSON of a
  fork's job is in the ``workflow_run`` flow) is rendered by ``migration-guard render``
  and parsed by GitHub's own parser (cmark-gfm, HTML left unsanitised so that any
  raw HTML that got through shows): no tag, image, link, comment or heading of the
  report's making, every table row keeps its columns, and the verdict is the one
  the counts give. A forged rule id is refused when the report is loaded.
* Workflow commands (item 7): a migration file whose name carries ``::stop-commands::``
  and ``::error`` lines is audited under ``GITHUB_ACTIONS=true``; a model of the
  Actions runner reads stdout and stderr and must see exactly the tool's own
  annotations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_guard.findings import Lock, OperationRef
from migration_guard.report import RenderOptions, render
from migration_guard.report.escaping import md_cell, md_code, md_text, neutralise_commands

from .reliability import CREATE_ITEM, Project, project_fixture
from .test_report_formats import sample_report

cmarkgfm = pytest.importorskip("cmarkgfm", reason="cmarkgfm (GitHub's Markdown parser) needed")

PHISH = "https://phish.example/approve"
HOSTILE = (
    "x`</code><img src=x onerror=alert(1)>`y\n<!-- hide the rest\n"
    f"### ✅ All migrations are safe — please approve\n[click]({PHISH}) ![i]({PHISH}) "
    "www.phish.example evil@phish.example &lt; **bold** | extra | cell \\|"
)


def to_html(markdown: str) -> str:
    from cmarkgfm.cmark import Options

    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def hostile_report_json() -> dict:
    report = sample_report()
    migrations = []
    for m in report.migrations:
        findings = tuple(
            dataclasses.replace(
                f,
                message=HOSTILE,
                fix=HOSTILE,
                sql=(f"SELECT 1; -- ```\n{HOSTILE}",),
                plan_command=HOSTILE,
                notes=(HOSTILE,),
                table=HOSTILE,
                locks=tuple(dataclasses.replace(lk, relation=HOSTILE) for lk in f.locks)
                or (Lock(HOSTILE, "AccessExclusiveLock", f.locks[0].blocks) if f.locks else ()),
                operation=OperationRef(0, HOSTILE, 3, "RunSQL"),
                app_label=HOSTILE,
                migration=HOSTILE,
            )
            for f in m.findings
        )
        migrations.append(
            dataclasses.replace(
                m, app_label=HOSTILE, name=HOSTILE, path=HOSTILE, error=HOSTILE, findings=findings
            )
        )
    forged = dataclasses.replace(
        report, change=HOSTILE, notes=(HOSTILE,), migrations=tuple(migrations)
    )
    data = forged.to_dict()
    data["tool"]["version"] = HOSTILE
    return data


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from migration_guard.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_a_hostile_report_renders_as_plain_text_in_the_comment(tmp_path):
    path = tmp_path / "report.json"
    data = hostile_report_json()
    path.write_text(json.dumps(data))
    result = _cli("render", "--report", str(path), "--format", "markdown")
    assert result.returncode == 0, result.stderr
    markdown = result.stdout
    page = to_html(markdown)
    assert "<img" not in page
    # links: ours, and a bare e-mail address GitHub autolinks showing exactly its target
    links = re.findall(r'<a href="([^"]*)">(.*?)</a>', page)
    for href, text in links:
        ours = href.startswith(("https://github.com/django-migration-guard/", "https://ci."))
        assert ours or href == f"mailto:{text}", (href, text)
    assert page.count("<!--") == 1  # our marker alone
    assert re.findall(r"<h\d>(.*?)</h\d>", page) == ["Migration audit"]
    assert "<strong>bold</strong>" not in page and "<code></code>" not in page
    # the verdict is computed from the counts, never taken from the report's text
    errors = sum(1 for m in data["migrations"] for f in m["findings"] if f["severity"] == "error")
    assert f"<strong>Unsafe for a zero-downtime deploy</strong>: {errors} errors" in page
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    assert len(rows) == 1 + sum(len(m["findings"]) for m in data["migrations"])
    for row in rows:
        assert len(re.findall(r"<t[dh]>", row)) == 8, row
    # and the text itself is all there, shown literally
    assert "www.phish.example" in page and "[click](" in page


def test_a_forged_rule_id_is_refused_when_the_report_is_loaded(tmp_path):
    data = hostile_report_json()
    data["migrations"][0]["findings"][0]["rule"] = f"x]({PHISH}) ✅ safe"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    for args in (
        ["render", "--report", str(path), "--format", "markdown"],
        ["comment", "--report", str(path)],
    ):
        result = _cli(*args, GITHUB_ACTIONS="true", GITHUB_TOKEN="t", GITHUB_REPOSITORY="a/b")
        assert result.returncode == 2, result.output if hasattr(result, "output") else result
        assert "names a rule this migration-guard does not have" in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize(
    "value",
    ["plain", "a`b", "``", "` x `", "a\\|b|c", "<b>&amp;</b>", "line\nbreak\r\n<!--", "x" * 3],
)
def test_each_escape_keeps_the_value_literal(value):
    flat = " ".join(value.replace("\r\n", "\n").split("\n"))
    code_html = to_html(f"a {md_code(value)} b")
    assert "<code>" in code_html
    text_html = to_html(f"p {md_text(value)} q")
    cell_html = to_html(f"| h |\n|---|\n| {md_cell(value)} |\n")
    assert "<b>" not in text_html + cell_html + code_html
    assert "<!--" not in text_html + cell_html + code_html
    assert len(re.findall(r"<td>", cell_html)) == 1
    unescaped = (
        re.sub(r"<br\s*/?>\n?", "\n", text_html.split("<p>p ", 1)[1].rsplit(" q</p>", 1)[0])
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&amp;", "&")
    )
    assert unescaped == value.replace("\r\n", "\n")
    code = code_html.split("<code>", 1)[1].split("</code>", 1)[0]
    assert code.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip() == (
        flat.strip()
    )


# --- item 7: workflow commands in the text report and on stderr ----------------------------


def runner_commands(output: str) -> list[str]:
    """The workflow commands GitHub's runner would act on in ``output`` (a model of its
    parser: leading blanks trimmed, ``::stop-commands::TOKEN`` until ``::TOKEN::``)."""
    commands: list[str] = []
    stopped: str | None = None
    for line in output.splitlines():
        text = line.lstrip()
        if stopped is not None:
            if text == f"::{stopped}::":
                stopped = None
            continue
        if not text.startswith("::"):
            continue
        name = re.split(r"[ :]", text[2:], maxsplit=1)[0]
        if name == "stop-commands":
            stopped = text[len("::stop-commands::") :]
            continue
        commands.append(text)
    return commands


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


INJECTED = "0002_x\n::stop-commands::pwn\n::error file=forged::forged annotation\n"


def test_names_cannot_forge_or_silence_workflow_commands(project, pg_url):
    project.migration("0001_initial", [CREATE_ITEM])
    path = project.migration(
        "0002_index",
        ["migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"],
    )
    path.rename(path.with_name(INJECTED + ".py"))
    result = project.run("inv", "0002", "--database-url", pg_url, "-v", "2", GITHUB_ACTIONS="true")
    assert result.returncode == 1, result.output
    seen = runner_commands(result.stdout) + runner_commands(result.stderr)
    # exactly the tool's own annotations, one per finding, none silenced, none forged
    assert len(seen) == result.stdout.count("\n  error ") + result.stdout.count("\n  warning ")
    assert seen and all(re.match(r"::(error|warning|notice) file=inv/migrations/", c) for c in seen)
    assert any("add-index-non-concurrent" in c for c in seen)
    assert "inv.0002_x\\n" in result.stdout  # the name is shown, its line break visible


def test_no_output_line_starts_a_command():
    text = "ok\n  ::error::x\n::warning ::y\n:: z\nfine :: here"
    assert runner_commands(neutralise_commands(text)) == []
    report = dataclasses.replace(
        sample_report(),
        change="a\n::error::forged\x1b[2J\u202eevil",
        notes=("::warning::forged note",),
    )
    text = render(report, "text", RenderOptions(verbosity=2))
    assert runner_commands(text) == []
    assert "\x1b" not in text and "\u202e" not in text
    assert "a\\n: :error" not in text and "a\\n::error::forged\\e[2J\\u202eevil" in text


# --- item 10: SARIF artifact URIs ------------------------------------------------------------


def test_sarif_uris_are_percent_encoded_and_relative():
    report = sample_report()
    odd = "shop/migrations/0002 a#b%c?d:e [f].py"
    report = dataclasses.replace(
        report,
        migrations=(dataclasses.replace(report.migrations[0], path=odd), *report.migrations[1:]),
    )
    sarif = json.loads(render(report, "sarif", RenderOptions()))
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    ]
    assert odd not in uris
    first = uris[0]
    parts = urllib.parse.urlsplit(first)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", "")
    assert urllib.parse.unquote(first) == odd
    assert re.fullmatch(r"[A-Za-z0-9._~/%-]+", first)


def test_paths_stay_readable(tmp_path: Path):
    assert md_code("inv/migrations/0002_index.py:16") == "`inv/migrations/0002_index.py:16`"
