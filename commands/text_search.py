"""The word rule every search menu follows (invoices, the project directory, time zones).

A query is split into words; a thing matches when every word is found in at least one of its
texts, starting where a word of that text starts (``elec`` finds "Volt Electric", ``12`` finds
"#12" and "#120" but not "SC-012"). Both sides are compared in their normalised form
(`normalize_search_text`): case and accents do not matter, and punctuation inside a number does
not either (``24,525`` and ``$24,525.00`` both find ``$24,525.00``).

`search_pattern` is the form both sides take for that comparison: a word start (a letter or
digit after anything else) is marked with `WORD_START`, so "starts where a word starts" is
plain substring search, which the databases' trigram indexes serve.
"""

from __future__ import annotations

import re
import unicodedata

_NUMBER_PUNCTUATION = re.compile(r"(?<=\d)[,.\-/'’–—:_](?=\d)")
_SPACES = re.compile(r"\s+")
_WORD_STARTS = re.compile(r"(?<![^\W_])(?=[^\W_])")
WORD_START = "\x1f"  # never typed: normalisation turns it into a space
# Trimmed from both ends of a typed word ("Oct," or "(2026)"); "#" and "$" are meaningful.
_WORD_EDGES = ",.;:!?()[]{}\"'’“”"


def normalize_search_text(text: str) -> str:
    """The comparable form of ``text``: accents stripped, case folded, punctuation between two
    digits dropped, runs of spaces made one. ``"Électricité 24,525.00"`` →
    ``"electricite 2452500"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = plain.casefold()
    return _SPACES.sub(" ", _NUMBER_PUNCTUATION.sub("", folded)).strip()


def query_words(query: str) -> list[str]:
    """The normalised words of a typed query, each at most once, in the order typed
    (empty when nothing searchable was typed)."""
    words: list[str] = []
    for word in normalize_search_text(query).split(" "):
        trimmed = word.strip(_WORD_EDGES)
        if trimmed and trimmed not in words:
            words.append(trimmed)
    return words


def search_pattern(normalized: str) -> str:
    """``normalized`` (text or word) with every word start marked: ``"sc-12"`` →
    ``"\\x1fsc-\\x1f12"``."""
    return _WORD_STARTS.sub(WORD_START, normalized)


def matches_every_word(words: list[str], *texts: str) -> bool:
    """True when each word (from `query_words`) is in one of ``texts`` where a word starts."""
    patterns = [search_pattern(normalize_search_text(text)) for text in texts]
    return all(any(search_pattern(word) in text for text in patterns) for word in words)
