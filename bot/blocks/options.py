"""The options of the invoice search: `InvoiceOption`s grouped by billing period."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Option, OptionGroup

from bot.blocks.text import PLAIN_LABEL_LIMIT, shorten
from commands.access import InvoiceMenu, InvoiceOption

OPTIONS_LIMIT = 100  # Slack shows at most 100 options in one response
MORE_MATCHES_VALUE = "more"  # not an invoice id: `read_selection` ignores it
MORE_MATCHES_GROUP = "More matches"


def invoice_option(option: InvoiceOption) -> Option:
    """One invoice in the menu; the value is its id, the label at most 75 characters."""
    return Option(value=str(option.invoice_id), label=shorten(option.label, PLAIN_LABEL_LIMIT))


def invoice_option_groups(menu: InvoiceMenu | Sequence[InvoiceOption]) -> list[dict[str, Any]]:
    """``option_groups`` for an options response: one group per billing period, in the order
    the options come, then the "type more" option when more matched; at most 100 in all."""
    options = menu.options if isinstance(menu, InvoiceMenu) else list(menu)
    more_label = menu.more_label if isinstance(menu, InvoiceMenu) else None
    room = OPTIONS_LIMIT - 1 if more_label else OPTIONS_LIMIT
    groups: dict[str, list[Option]] = {}
    for option in options[:room]:
        groups.setdefault(option.group, []).append(invoice_option(option))
    if more_label:
        more = Option(value=MORE_MATCHES_VALUE, label=shorten(more_label, PLAIN_LABEL_LIMIT))
        groups.setdefault(MORE_MATCHES_GROUP, []).append(more)
    return [
        OptionGroup(label=shorten(label, PLAIN_LABEL_LIMIT), options=members).to_dict()
        for label, members in groups.items()
    ]
