"""Money parsing lives in `sources.money` (both sources and the use cases read Procore money);
this name stays for the use cases that import it from here."""

from sources.money import money_or_zero, parse_money

__all__ = ["money_or_zero", "parse_money"]
