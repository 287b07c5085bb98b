"""Rule registry (filled in with the audit)."""

from __future__ import annotations

from typing import Any


def registry() -> dict[str, Any]:
    return {}
