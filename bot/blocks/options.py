"""The options of the invoice search: `InvoiceOption`s grouped by billing period."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Option, OptionGroup

from bot.blocks.text import PLAIN_LABEL_LIMIT, shorten
from commands.access import InvoiceOption

OPTIONS_LIMIT = 100  # Slack shows at most 100 options in one response


def invoice_option(option: InvoiceOption) -> Option:
    """One invoice in the menu; the value is its id, the label at most 75 characters."""
    return Option(value=str(option.invoice_id), label=shorten(option.label, PLAIN_LABEL_LIMIT))


def invoice_option_groups(options: Sequence[InvoiceOption]) -> list[dict[str, Any]]:
    """``option_groups`` for an options response: one group per billing period, in the order
    the options come (newest period first), at most 100 options in all."""
    groups: dict[str, list[Option]] = {}
    for option in options[:OPTIONS_LIMIT]:
        groups.setdefault(option.group, []).append(invoice_option(option))
    return [
        OptionGroup(label=shorten(label, PLAIN_LABEL_LIMIT), options=members).to_dict()
        for label, members in groups.items()
    ]
