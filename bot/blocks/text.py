"""Small text helpers shared by the builders: mrkdwn escaping, plurals, length limits."""

from __future__ import annotations

from collections.abc import Iterable

SECTION_TEXT_LIMIT = 3000
PLAIN_LABEL_LIMIT = 75


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``plural(1, "invoice")`` → ``"1 invoice"``; ``plural(5, "invoice")`` → ``"5 invoices"``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def chunk_lines(lines: Iterable[str], limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Join lines into as few texts as possible, each at most ``limit`` characters."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = shorten(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks
