"""Money as Procore sends it (``"1,234.50"``, ``"-$12"``, a JSON number), parsed exactly.

Shared by both sources and the use cases."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

AMOUNT = re.compile(r"(?P<sign>-?)\$?(?P<whole>\d{1,3}(?:,\d{3})+|\d*)(?P<fraction>\.\d+)?")


def parse_money(value: object, *, percent: bool = False) -> Decimal:
    """Procore money (``"1,234.50"``, ``"-$12"``, a JSON number) as an exact Decimal.

    With ``percent``, a trailing ``%`` is allowed. Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("not an amount")
        return value
    if not isinstance(value, str):
        raise ValueError("not an amount")
    text = value.strip()
    if percent:
        text = text.removesuffix("%").rstrip()
    match = AMOUNT.fullmatch(text)
    if match is None or not (match["whole"] or match["fraction"]):
        raise ValueError("not an amount")
    digits = match["whole"].replace(",", "") or "0"
    try:
        return Decimal(f"{match['sign']}{digits}{match['fraction'] or ''}")
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only digits
        raise ValueError("not an amount") from error


def money_or_zero(value: object) -> Decimal:
    """`parse_money` of a field that may be absent: None or ``""`` is zero."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal(0)
    return parse_money(value, percent=isinstance(value, str) and value.strip().endswith("%"))
