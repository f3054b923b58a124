"""The options of the invoice search: `InvoiceOption`s grouped by billing period."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Option, OptionGroup

from bot.blocks.modal import WHOLE_PERIOD_VALUE_PREFIX
from bot.blocks.text import PLAIN_LABEL_LIMIT, shorten
from commands.access import InvoiceMenu, InvoiceOption, PeriodSize

OPTIONS_LIMIT = 100  # Slack shows at most 100 options in one response
MORE_MATCHES_VALUE = "more"  # not an invoice id: `read_selection` ignores it
MORE_MATCHES_GROUP = "More matches"


def invoice_option(option: InvoiceOption) -> Option:
    """One invoice in the menu; the value is its id, the label at most 75 characters."""
    return Option(value=str(option.invoice_id), label=shorten(option.label, PLAIN_LABEL_LIMIT))


def whole_period_option(period: PeriodSize) -> Option:
    """``"All 3 invoices of Oct 1–31, 2026"``; its value names the period (``period:<id>``)."""
    return Option(
        value=f"{WHOLE_PERIOD_VALUE_PREFIX}{period.period_id}",
        label=shorten(f"All {period.invoice_count} invoices of {period.dates}", PLAIN_LABEL_LIMIT),
    )


def invoice_option_groups(menu: InvoiceMenu | Sequence[InvoiceOption]) -> list[dict[str, Any]]:
    """``option_groups`` for an options response: one group per billing period, in the order
    the options come (newest period first), then the "type more" option when more matched; at
    most 100 options in all. A group whose period is in the menu's ``period_sizes`` (with 2
    invoices or more) starts with its "All N invoices of …" option."""
    options = menu.options if isinstance(menu, InvoiceMenu) else list(menu)
    more_label = menu.more_label if isinstance(menu, InvoiceMenu) else None
    sizes = menu.period_sizes if isinstance(menu, InvoiceMenu) else ()
    room = OPTIONS_LIMIT - 1 if more_label else OPTIONS_LIMIT
    wholes = {period.period_id: period for period in sizes if period.invoice_count > 1}
    groups: dict[str, list[Option]] = {}
    for option in options:
        whole = wholes.pop(option.period_id, None) if option.period_id is not None else None
        if whole is not None and room > 1:
            groups.setdefault(option.group, []).append(whole_period_option(whole))
            room -= 1
        if room < 1:
            break
        groups.setdefault(option.group, []).append(invoice_option(option))
        room -= 1
    if more_label:
        more = Option(value=MORE_MATCHES_VALUE, label=shorten(more_label, PLAIN_LABEL_LIMIT))
        groups.setdefault(MORE_MATCHES_GROUP, []).append(more)
    return [
        OptionGroup(label=shorten(label, PLAIN_LABEL_LIMIT), options=members).to_dict()
        for label, members in groups.items()
    ]
