"""The "compile an invoice backup" modal: building it, and reading what the user chose.

Contract with the listeners:
- ``private_metadata`` is `ModalMetadata` (channel where the command was typed, requester, project).
- The project select dispatches ``block_actions`` (``PROJECT_ACTION_ID``); the listener rebuilds the
  modal with `compile_modal` for the newly chosen project and calls ``views.update``.
- The invoice select is a ``multi_external_select`` whose block id names the project
  (`invoices_block_id`), so a project change gives it a new block and clears the old choice.
- The delivery choice (``DELIVERY_BLOCK_ID``): post here (default), by DM, or here even with
  private contracts; the listener warns (`private_audience_warning`) before posting private
  contracts where people outside their private lists would see them.
- The listeners seal ``private_metadata`` for the user (`bot.listeners.forms`); the builders here
  write and read the plain value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ExternalDataMultiSelectElement,
    InputBlock,
    Option,
    RadioButtonsElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.blocks.common import context
from bot.blocks.text import PLAIN_LABEL_LIMIT, plural, shorten
from commands.access import ProjectChoice
from commands.ids import parse_id

CALLBACK_ID = "compile_backups"
PROJECT_BLOCK_ID = "project"
PROJECT_ACTION_ID = "project_select"
INVOICES_BLOCK_PREFIX = "invoices-"
INVOICES_ACTION_ID = "invoice_select"
DELIVERY_BLOCK_ID = "delivery"
DELIVERY_ACTION_ID = "delivery_choice"
DELIVER_HERE = "here"
DELIVER_BY_DM = "dm"
DELIVER_HERE_ANYWAY = "here_anyway"
DELIVERY_CHOICES = (DELIVER_HERE, DELIVER_BY_DM, DELIVER_HERE_ANYWAY)
NAMES_LISTED = 8
WHOLE_PERIOD_VALUE_PREFIX = "period:"  # an option standing for a whole billing period
PROJECT_OPTIONS_LIMIT = 100


@dataclass(frozen=True)
class ModalMetadata:
    """What the modal carries between requests (``private_metadata``)."""

    channel_id: str
    user_id: str
    project_id: int | None = None

    def dump(self) -> str:
        """Compact JSON, well under Slack's 3,000-character limit."""
        return json.dumps({"c": self.channel_id, "u": self.user_id, "p": self.project_id})

    @classmethod
    def parse(cls, raw: str) -> ModalMetadata:
        """Read `dump` output back; ValueError when it is not ours."""
        try:
            data = json.loads(raw)
            project_id = data.get("p")
            parsed = parse_id(project_id)
            if project_id is not None and parsed is None:
                raise ValueError("project id out of range")
            return cls(channel_id=str(data["c"]), user_id=str(data["u"]), project_id=parsed)
        except (TypeError, KeyError, ValueError, AttributeError) as error:
            raise ValueError(f"not invoice-backups modal metadata: {raw!r}") from error


@dataclass(frozen=True)
class ModalSelection:
    """What the user chose in the modal."""

    project_id: int | None
    invoice_ids: tuple[int, ...]
    invoices_block_id: str
    invalid_choices: int = 0  # options whose value is not an invoice id (a forged request)
    delivery: str = DELIVER_HERE  # one of DELIVERY_CHOICES
    period_ids: tuple[int, ...] = ()  # whole billing periods chosen ("All N invoices of …")


def invoices_block_id(project_id: int | None) -> str:
    """The block id of the invoice select for ``project_id``."""
    return f"{INVOICES_BLOCK_PREFIX}{project_id if project_id is not None else 'none'}"


def project_option(project: ProjectChoice) -> Option:
    """One project in the select; label at most 75 characters."""
    label = f"{project.name} ({project.project_number})" if project.project_number else project.name
    return Option(value=str(project.id), label=shorten(label, PLAIN_LABEL_LIMIT))


DELIVERY_OPTIONS = {
    DELIVER_HERE: Option(value=DELIVER_HERE, label="Post it in this conversation"),
    DELIVER_BY_DM: Option(value=DELIVER_BY_DM, label="Send it to me as a direct message"),
    DELIVER_HERE_ANYWAY: Option(
        value=DELIVER_HERE_ANYWAY,
        label="Post it here, even with private contracts",
        description="People here outside their private lists will see those invoices",
    ),
}


def compile_modal(
    projects: Sequence[ProjectChoice],
    selected: ProjectChoice | None,
    metadata: ModalMetadata,
    *,
    max_invoices: int,
    destination: str | None = None,
) -> View:
    """The modal: a project select (``projects``, ``selected`` preselected) and an invoice search;
    ``destination`` says where the PDF will go (`bot.blocks.messages.destination_text`).

    ``projects`` must be non-empty (a user with none gets an explanation instead of a modal).
    """
    if not projects:
        raise ValueError("the modal needs at least one project")
    shown = list(projects[:PROJECT_OPTIONS_LIMIT])
    if selected is not None and selected not in shown:
        shown[-1] = selected
    project_select = StaticSelectElement(
        action_id=PROJECT_ACTION_ID,
        placeholder="Choose a project",
        options=[project_option(project) for project in shown],
        initial_option=project_option(selected) if selected is not None else None,
    )
    invoice_hint = (
        f"Search by invoice or application number, contract, title or vendor. "
        f"Up to {plural(max_invoices, 'invoice')}."
        if selected is not None
        else "Choose a project first; this list then shows its invoices."
    )
    invoice_select = ExternalDataMultiSelectElement(
        action_id=INVOICES_ACTION_ID,
        placeholder="Search invoices",
        min_query_length=0,
        max_selected_items=max_invoices,
    )
    return View(
        type="modal",
        callback_id=CALLBACK_ID,
        title="Invoice backup",
        submit="Compile",
        close="Cancel",
        private_metadata=ModalMetadata(
            metadata.channel_id, metadata.user_id, selected.id if selected else None
        ).dump(),
        blocks=[
            context(
                destination
                or "One PDF with each invoice and its PDF attachments, "
                "posted in the conversation where you typed the command."
            ),
            InputBlock(
                block_id=PROJECT_BLOCK_ID,
                label="Project",
                element=project_select,
                dispatch_action=True,
            ),
            InputBlock(
                block_id=invoices_block_id(selected.id if selected else None),
                label="Invoices",
                element=invoice_select,
                hint=invoice_hint,
            ),
            InputBlock(
                block_id=DELIVERY_BLOCK_ID,
                label="Deliver",
                optional=True,
                element=RadioButtonsElement(
                    action_id=DELIVERY_ACTION_ID,
                    options=list(DELIVERY_OPTIONS.values()),
                    initial_option=DELIVERY_OPTIONS[DELIVER_HERE],
                ),
                hint="Private contracts: I warn you first if people in this conversation are "
                "not on their private lists.",
            ),
        ],
    )


def _project_from_state(values: Mapping[str, Any]) -> int | None:
    selected = values.get(PROJECT_BLOCK_ID, {}).get(PROJECT_ACTION_ID, {}).get("selected_option")
    if not isinstance(selected, Mapping):
        return None
    return parse_id(selected.get("value"))


def selected_project_id(view: Mapping[str, Any]) -> int | None:
    """The project chosen in a modal payload: its state first (None when the state holds a
    value that is no project id), else its private metadata."""
    values = (view.get("state") or {}).get("values") or {}
    project_id = _project_from_state(values)
    if project_id is not None:
        return project_id
    chosen = values.get(PROJECT_BLOCK_ID, {}).get(PROJECT_ACTION_ID, {}).get("selected_option")
    if chosen:
        return None
    try:
        return ModalMetadata.parse(view.get("private_metadata") or "").project_id
    except ValueError:
        return None


def selected_project_label(view: Mapping[str, Any]) -> str | None:
    """The visible label of the chosen project ("Riverside Tower (2026-014)"), if any."""
    values = (view.get("state") or {}).get("values") or {}
    selected = values.get(PROJECT_BLOCK_ID, {}).get(PROJECT_ACTION_ID, {}).get("selected_option")
    text = (selected or {}).get("text") or {}
    return str(text["text"]) if text.get("text") else None


def read_selection(view: Mapping[str, Any]) -> ModalSelection:
    """The project and invoices of a submitted modal (invoice ids in the order chosen)."""
    values: Mapping[str, Any] = (view.get("state") or {}).get("values") or {}
    block_id = next(
        (key for key in values if key.startswith(INVOICES_BLOCK_PREFIX)),
        invoices_block_id(None),
    )
    chosen = values.get(block_id, {}).get(INVOICES_ACTION_ID, {}).get("selected_options") or []
    invoice_ids: list[int] = []
    period_ids: list[int] = []
    invalid = 0
    for option in chosen if isinstance(chosen, list) else [None]:
        value = option.get("value") if isinstance(option, Mapping) else None
        if isinstance(value, str) and value.startswith(WHOLE_PERIOD_VALUE_PREFIX):
            period_id = parse_id(value.removeprefix(WHOLE_PERIOD_VALUE_PREFIX))
            if period_id is None:
                invalid += 1
            else:
                period_ids.append(period_id)
            continue
        invoice_id = parse_id(value)
        if invoice_id is None:
            invalid += 1
        else:
            invoice_ids.append(invoice_id)
    delivery_state = values.get(DELIVERY_BLOCK_ID, {}).get(DELIVERY_ACTION_ID, {})
    delivery = (delivery_state.get("selected_option") or {}).get("value") or DELIVER_HERE
    return ModalSelection(
        project_id=selected_project_id(view),
        invoice_ids=tuple(dict.fromkeys(invoice_ids)),
        invoices_block_id=block_id,
        invalid_choices=invalid,
        delivery=delivery if delivery in DELIVERY_CHOICES else DELIVER_HERE,
        period_ids=tuple(dict.fromkeys(period_ids)),
    )


def private_audience_warning(outsiders: Sequence[str]) -> str:
    """The warning under the delivery choice: who in the conversation is outside the private
    lists of the selected private contracts, and the two ways on."""
    names = ", ".join(outsiders[:NAMES_LISTED])
    if len(outsiders) > NAMES_LISTED:
        names += f" and {len(outsiders) - NAMES_LISTED} more"
    return (
        "Some of these invoices are from private contracts, and "
        f"{names} in this conversation {'is' if len(outsiders) == 1 else 'are'} not on their "
        'private lists. Choose "Send it to me as a direct message", or "Post it here, even '
        'with private contracts".'
    )


def selection_errors(selection: ModalSelection, max_invoices: int) -> dict[str, str]:
    """Errors that need no database: block id → message (empty when the choice is well formed)."""
    if selection.project_id is None:
        return {PROJECT_BLOCK_ID: "Choose a project."}
    chosen = len(selection.invoice_ids) + selection.invalid_choices
    if chosen > max_invoices:
        return {selection.invoices_block_id: too_many_error(chosen, max_invoices)}
    if selection.invalid_choices:
        return {
            selection.invoices_block_id: "Some of the chosen invoices are not valid choices. "
            "Clear the list and choose them again from the search."
        }
    if not selection.invoice_ids and not selection.period_ids:
        return {selection.invoices_block_id: "Choose at least one invoice."}
    return {}


def too_many_error(chosen: int, max_invoices: int) -> str:
    """The message for a choice of more invoices than one backup holds."""
    return (
        f"Choose at most {max_invoices} invoices ({chosen} selected); split them into several "
        "backups."
    )


def whole_period_error(vanished: int, invoice_count: int) -> str | None:
    """The message when chosen whole billing periods no longer exist or hold nothing for the
    user (None when all is well)."""
    if invoice_count == 0:
        return "None of the chosen billing periods has invoices you may compile. Choose again."
    if vanished:
        return (
            f"{vanished} of the chosen billing periods no longer "
            f"{'has' if vanished == 1 else 'have'} invoices you may compile. Remove "
            f"{'it' if vanished == 1 else 'them'} and submit again."
        )
    return None


def unavailable_error(missing: int, chosen: int) -> str:
    """The message for invoices that vanished or became hidden, naming none of them."""
    if chosen == 1 and missing == 1:
        return "The selected invoice is no longer available. Choose another one."
    if missing == chosen:
        return f"None of the {chosen} selected invoices is available any more. Choose again."
    verb = "is" if missing == 1 else "are"
    return (
        f"{missing} of the selected invoices {verb} no longer available. "
        "Remove them and submit again."
    )
