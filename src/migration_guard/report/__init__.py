"""Renderers: each turns an :class:`~migration_guard.results.AuditReport` into text.

Renderers only format; they never decide what is a finding. A renderer is a
function ``render(report, options) -> str`` registered under a format name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..results import AuditReport


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    #: Django ``Style`` (``color_style()`` or ``no_style()``), for text output.
    style: object | None = None
    verbosity: int = 1
    #: How to invoke Django in suggested commands.
    manage: str = "python manage.py"
    #: URL of the full report (for comments cut at the platform limit).
    report_url: str | None = None


Renderer = Callable[[AuditReport, RenderOptions], str]

_RENDERERS: dict[str, Renderer] = {}


def register(name: str) -> Callable[[Renderer], Renderer]:
    def decorate(func: Renderer) -> Renderer:
        _RENDERERS[name] = func
        return func

    return decorate


#: The formats, each rendered by the module of its name (imported when asked for:
#: the Markdown renderer's template engine is no cost of a text report).
FORMATS = ("github", "gitlab", "json", "markdown", "sarif", "text")


def formats() -> list[str]:
    return list(FORMATS)


def render(report: AuditReport, fmt: str, options: RenderOptions | None = None) -> str:
    if fmt not in _RENDERERS:
        if fmt not in FORMATS:
            raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
        import importlib

        importlib.import_module(f"{__name__}.{fmt}")
    return _RENDERERS[fmt](report, options or RenderOptions())
