"""The "manage access" modal (``/compile-backups access``): building it, reading it back.

Contract with the listeners (`bot.listeners.access`):
- ``private_metadata`` is ``{"p": project_id}``: the project the form was built for.
- The project select (``PROJECT_ACTION_ID``, block ``PROJECT_BLOCK_ID``) dispatches
  ``block_actions``; the listener rebuilds the form for the chosen project (``views.update``).
- Every other input's block id ends with the project id, so switching project resets them to
  that project's values (Slack keeps what was typed in inputs whose block and action ids stay).
- The project-user select is an ``external_select`` (``LINK_PROJECT_USER_ACTION_ID``) searched
  by name or e-mail; its options come from `project_user_options`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    DividerBlock,
    ExternalDataSelectElement,
    InputBlock,
    Option,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.blocks.common import Message, context, section
from bot.blocks.messages import whom_to_ask
from bot.blocks.modal import project_option
from bot.blocks.text import PLAIN_LABEL_LIMIT, chunk_lines, escape, shorten
from commands.access import ProjectChoice
from commands.manage_access import ProjectSettings, RosterLine
from commands.text_search import matches_every_word, query_words
from storage.models import DICTIONARY_CHOICES

CALLBACK_ID = "manage_access"
PROJECT_BLOCK_ID = "access-project"
PROJECT_ACTION_ID = "access_project_select"
LINK_USER_ACTION_ID = "access_link_slack_user"
LINK_PROJECT_USER_ACTION_ID = "access_link_project_user"
CONTACTS_ACTION_ID = "access_contacts_may_compile"
TIE_OUT_ACTION_ID = "access_tie_out_blocks"
TIE_OUT_ON = "on"
DICTIONARY_ACTION_ID = "access_dictionary"
CONTACTS_ON = "on"
PROJECT_OPTIONS_LIMIT = 100
ROSTER_LINES_SHOWN = 40  # a few sections of at most 3,000 characters each
PROJECT_USER_OPTIONS_LIMIT = 100

LEVEL_LABELS = {"admin": "Admin", "standard": "Standard", "read_only": "Read only", "none": "None"}
DICTIONARY_LABELS = {
    "commitments": "Name of the Commitments tool",
    "invoicing": "Name of the Invoicing tool",
    "subcontractor": "Name for subcontractors",
}
CONTACTS_OPTION_TEXT = "Invoice contacts may compile their own commitments' invoices"
TIE_OUT_OPTION_TEXT = "Leave out invoices whose numbers do not tie out"
TIE_OUT_OPTION_DESCRIPTION = (
    "Otherwise they are included and the cover's Checks section says what does not add up."
)


def level_label(commitments_access: str) -> str:
    """``"read_only"`` → ``"Read only"``."""
    return LEVEL_LABELS.get(commitments_access, commitments_access.replace("_", " ").title())


def link_user_block_id(project_id: int) -> str:
    return f"access-link-user-{project_id}"


def link_project_user_block_id(project_id: int) -> str:
    return f"access-link-project-user-{project_id}"


def contacts_block_id(project_id: int) -> str:
    return f"access-contacts-{project_id}"


def tie_out_block_id(project_id: int) -> str:
    return f"access-tie-out-{project_id}"


def dictionary_block_id(tool: str, project_id: int) -> str:
    return f"access-dictionary-{tool}-{project_id}"


# --- building ------------------------------------------------------------------------------


def roster_line(line: RosterLine) -> str:
    """``"• *Ana Stone* · ana@… · None · linked: <@U1> · invoice contact of SC-001"``."""
    parts = [f"*{escape(line.name or str(line.user_id))}*"]
    if line.email:
        parts.append(escape(line.email))
    parts.append(level_label(line.commitments_access))
    if not line.access_known:
        parts.append("_level could not be read from Procore: no access until it can be_")
    if not line.is_active:
        parts.append("_inactive_")
    if line.linked_slack_user_ids:
        parts.append("linked: " + ", ".join(f"<@{user}>" for user in line.linked_slack_user_ids))
    if line.invoice_contact_of:
        parts.append("invoice contact of " + ", ".join(map(escape, line.invoice_contact_of)))
    return "• " + " · ".join(parts)


def roster_blocks(roster: Sequence[RosterLine], tool: str, project_id: int) -> list[Block]:
    """Who has which level, at most `ROSTER_LINES_SHOWN` lines, then "…and N more"."""
    heading = f"*Who has which level on the {escape(tool)} tool*"
    if not roster:
        return [section(f"{heading}\nNobody is in this project's directory yet.")]
    lines = [roster_line(line) for line in roster[:ROSTER_LINES_SHOWN]]
    if len(roster) > ROSTER_LINES_SHOWN:
        lines.append(
            f"…and {len(roster) - ROSTER_LINES_SHOWN} more (everyone: "
            f"`invoice-backups access --project {project_id} roster` on the command line)."
        )
    return [section(chunk) for chunk in chunk_lines([heading, *lines])]


def _name_option(name: str) -> Option:
    return Option(value=name, label=shorten(name, PLAIN_LABEL_LIMIT))


def _dictionary_inputs(settings: ProjectSettings) -> list[Block]:
    project_id = settings.project.id
    inputs: list[Block] = []
    for tool, names in DICTIONARY_CHOICES.items():
        current = settings.dictionary.get(tool, names[0])
        inputs.append(
            InputBlock(
                block_id=dictionary_block_id(tool, project_id),
                label=DICTIONARY_LABELS.get(tool, tool.title()),
                element=StaticSelectElement(
                    action_id=DICTIONARY_ACTION_ID,
                    options=[_name_option(name) for name in names],
                    initial_option=_name_option(current) if current in names else None,
                ),
            )
        )
    return inputs


def unreadable_lists_blocks(numbers: Sequence[str]) -> list[Block]:
    """A warning naming the private commitments whose private list could not be read."""
    if not numbers:
        return []
    shown = ", ".join(escape(number) for number in numbers[:20])
    more = f" and {len(numbers) - 20} more" if len(numbers) > 20 else ""
    return [
        context(
            f":lock: The private list of {shown}{more} could not be read from Procore: until it "
            "can be, only this bot's owners see those invoices."
        )
    ]


def _setting_checkbox(
    block_id: str, label: str, action_id: str, option: Option, *, on: bool
) -> InputBlock:
    """An optional input of one checkbox, ``option``, for a yes/no setting: ticked when ``on``
    (read back by `_ticked`)."""
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=True,
        element=CheckboxesElement(
            action_id=action_id, options=[option], initial_options=[option] if on else None
        ),
    )


def access_modal(
    projects: Sequence[ProjectChoice], settings: ProjectSettings, roster: Sequence[RosterLine]
) -> View:
    """The form for ``settings.project``: the project select (``projects``, those the user may
    manage), who has which level, a Slack link to make, the invoice-contact and tie-out settings
    and the dictionary."""
    project = settings.project
    shown = list(projects[:PROJECT_OPTIONS_LIMIT])
    if project not in shown:
        shown = [project, *shown[: PROJECT_OPTIONS_LIMIT - 1]]
    tool = settings.dictionary.get("commitments") or "Commitments"
    contacts_option = Option(
        value=CONTACTS_ON,
        label=CONTACTS_OPTION_TEXT,
        description="Never a private commitment's invoices unless they are on its private list.",
    )
    tie_out_option = Option(
        value=TIE_OUT_ON, label=TIE_OUT_OPTION_TEXT, description=TIE_OUT_OPTION_DESCRIPTION
    )
    blocks: list[Block] = [
        context(
            "Who may compile invoice backups on a project, and the words messages use. "
            "Changes apply when you press Save; each is recorded in the audit."
        ),
        InputBlock(
            block_id=PROJECT_BLOCK_ID,
            label="Project",
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=PROJECT_ACTION_ID,
                options=[project_option(choice) for choice in shown],
                initial_option=project_option(project),
            ),
        ),
        *roster_blocks(roster, tool, project.id),
        context(
            f"Access levels come from Procore and can't be changed here: a Procore project admin "
            f"sets each person's level on the {escape(tool)} tool in the project's Directory "
            "(their permission template); it shows here after the next import."
        ),
        *unreadable_lists_blocks(settings.unreadable_private_lists),
        DividerBlock(),
        section("*Link a Slack user to a project user*"),
        context(
            "People are matched by the e-mail of their Slack profile. A link wins over that "
            "match: use it when someone's Slack e-mail differs from their project e-mail."
        ),
        InputBlock(
            block_id=link_user_block_id(project.id),
            label="Slack user",
            optional=True,
            element=UserSelectElement(action_id=LINK_USER_ACTION_ID, placeholder="Choose someone"),
        ),
        InputBlock(
            block_id=link_project_user_block_id(project.id),
            label="Project user",
            optional=True,
            hint="Search the project directory by name or e-mail.",
            element=ExternalDataSelectElement(
                action_id=LINK_PROJECT_USER_ACTION_ID,
                placeholder="Search by name or e-mail",
                min_query_length=0,
            ),
        ),
        DividerBlock(),
        _setting_checkbox(
            contacts_block_id(project.id),
            "Invoice contacts",
            CONTACTS_ACTION_ID,
            contacts_option,
            on=settings.invoice_contacts_may_compile,
        ),
        _setting_checkbox(
            tie_out_block_id(project.id),
            "Numbers that do not tie out",
            TIE_OUT_ACTION_ID,
            tie_out_option,
            on=settings.tie_out_blocks,
        ),
        DividerBlock(),
        section("*Your project's words*"),
        context(
            "Used in my messages (refusals, help, hints) and on the backup's cover page, as your "
            "Procore project names them."
        ),
        *_dictionary_inputs(settings),
    ]
    return View(
        type="modal",
        callback_id=CALLBACK_ID,
        title="Manage access",
        submit="Save",
        close="Cancel",
        private_metadata=json.dumps({"p": project.id}),
        blocks=blocks,
    )


def project_user_option(line: RosterLine) -> Option:
    """``"Ana Stone · ana@acmeconcrete.example"`` (value: the Procore user id), at most 75
    characters, ``(inactive)`` kept at the end."""
    label = f"{line.name or line.user_id} · {line.email}" if line.email else str(line.name)
    suffix = "" if line.is_active else " (inactive)"
    label = shorten(label, PLAIN_LABEL_LIMIT - len(suffix)) + suffix
    return Option(value=str(line.user_id), label=label)


def project_user_options(roster: Sequence[RosterLine], query: str) -> list[dict[str, Any]]:
    """The options response of the project-user search: every word of ``query`` in the name or
    the e-mail (`commands.text_search`: where a word starts; case and accents ignored)."""
    words = query_words(query)
    matching = [line for line in roster if matches_every_word(words, line.name, line.email)]
    return [project_user_option(line).to_dict() for line in matching[:PROJECT_USER_OPTIONS_LIMIT]]


def access_saved_view(project: ProjectChoice, changes: Sequence[str]) -> View:
    """What the modal turns into after Save: the changes made (or that there were none)."""
    lines = [f"• {change}" for change in changes] or ["Nothing changed."]
    heading = f"*{escape(project.label)}*"
    return View(
        type="modal",
        callback_id=f"{CALLBACK_ID}_saved",
        title="Manage access",
        close="Done",
        blocks=[section(chunk) for chunk in chunk_lines([heading, *lines])],
    )


def manage_refusal_message(tool: str, owner_ids: Sequence[str]) -> Message:
    """The refusal of ``/compile-backups access`` to someone who may manage no project."""
    text = (
        f":no_entry: Managing access needs *Admin* on a project's {escape(tool)} tool, or being "
        f"one of this bot's owners. Ask {whom_to_ask(owner_ids)}."
    )
    return Message.of(text.replace("*", ""), [section(text)])


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessForm:
    """What the admin submitted. ``project_id`` is the project the form was built for."""

    project_id: int | None
    chosen_project_id: int | None
    slack_user_id: str | None
    project_user_id: str | None
    contacts_may_compile: bool | None  # None when the form had no such input
    dictionary: dict[str, str] = field(default_factory=dict)
    tie_out_blocks: bool | None = None  # None when the form had no such input


def form_project_id(view: Mapping[str, Any]) -> int | None:
    """The project the form was built for (its ``private_metadata``)."""
    try:
        value = json.loads(view.get("private_metadata") or "{}").get("p")
        return int(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def _value(values: Mapping[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    return (values.get(block_id) or {}).get(action_id) or {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _ticked(values: Mapping[str, Any], block_id: str, action_id: str, on: str) -> bool | None:
    """Whether a `_setting_checkbox` came back with its option ``on`` ticked (None when the
    form has no such block)."""
    if block_id not in values:
        return None
    checked = _value(values, block_id, action_id).get("selected_options")
    return any(option.get("value") == on for option in checked or [])


def read_access_form(view: Mapping[str, Any]) -> AccessForm:
    """The submitted form, from ``view.state.values``."""
    values: Mapping[str, Any] = (view.get("state") or {}).get("values") or {}
    project_id = form_project_id(view)
    chosen = _value(values, PROJECT_BLOCK_ID, PROJECT_ACTION_ID).get("selected_option") or {}
    chosen_project_id = _int(chosen.get("value"))
    if project_id is None:
        return AccessForm(None, chosen_project_id, None, None, None)
    user = _value(values, link_user_block_id(project_id), LINK_USER_ACTION_ID).get("selected_user")
    project_user = (
        _value(values, link_project_user_block_id(project_id), LINK_PROJECT_USER_ACTION_ID).get(
            "selected_option"
        )
        or {}
    )
    contacts = _ticked(values, contacts_block_id(project_id), CONTACTS_ACTION_ID, CONTACTS_ON)
    tie_out = _ticked(values, tie_out_block_id(project_id), TIE_OUT_ACTION_ID, TIE_OUT_ON)
    dictionary: dict[str, str] = {}
    for tool in DICTIONARY_CHOICES:
        selected = _value(values, dictionary_block_id(tool, project_id), DICTIONARY_ACTION_ID)
        name = (selected.get("selected_option") or {}).get("value")
        if name:
            dictionary[tool] = str(name)
    return AccessForm(
        project_id=project_id,
        chosen_project_id=chosen_project_id if chosen_project_id is not None else project_id,
        slack_user_id=str(user) if user else None,
        project_user_id=str(project_user["value"]) if project_user.get("value") else None,
        contacts_may_compile=contacts,
        dictionary=dictionary,
        tie_out_blocks=tie_out,
    )


def access_form_errors(form: AccessForm) -> dict[str, str]:
    """Errors that need no database: block id → message (empty when well formed)."""
    if form.project_id is None:
        return {PROJECT_BLOCK_ID: "Choose a project."}
    if form.chosen_project_id != form.project_id:
        return {
            PROJECT_BLOCK_ID: "Wait until the form shows this project's settings, then save again."
        }
    if form.slack_user_id is not None and form.project_user_id is None:
        return {link_project_user_block_id(form.project_id): "Choose the project user to link to."}
    if form.project_user_id is not None and form.slack_user_id is None:
        return {link_user_block_id(form.project_id): "Choose the Slack user to link."}
    return {}
