"""Reading ids that arrive as text (Slack payloads, command arguments): positive 64-bit ints."""

from __future__ import annotations

from typing import Any

INT64_MAX = 2**63 - 1


def parse_id(value: Any) -> int | None:
    """A positive 64-bit id from ASCII digits (or an int); None for anything else, so an id
    no database column can hold never reaches a query."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= INT64_MAX else None
