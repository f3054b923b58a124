"""The "weekly digest" modal (``/compile-backups schedule``): building it, reading it back.

Contract with the listeners:
- ``private_metadata`` is `ScheduleModalMetadata` (where the command was typed, by whom).
- The time zone is an ``external_select`` (``TIMEZONE_ACTION_ID``) answered by `timezone_options`.
- `read_schedule_form` turns a submitted view into a `ScheduleSpec` or errors by block id;
  `spec_errors` maps `commands.digests.validate_spec` problems onto the blocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ConversationFilter,
    ConversationSelectElement,
    ExternalDataSelectElement,
    InputBlock,
    Option,
    PlainTextObject,
    RadioButtonsElement,
    StaticSelectElement,
    TimePickerElement,
)
from slack_sdk.models.views import View

from bot.blocks.common import context
from bot.blocks.modal import PROJECT_OPTIONS_LIMIT, project_option
from bot.blocks.text import PLAIN_LABEL_LIMIT, shorten
from commands.access import ProjectChoice
from commands.digests import SELECTION_LABELS, WEEKDAYS, ScheduleSpec, validate_spec
from commands.ids import parse_id
from commands.labels import status_label
from commands.text_search import matches_every_word, query_words
from storage.models import INVOICE_STATUSES
from storage.schedules import DEFAULT_STATUSES

CALLBACK_ID = "digest_schedule"
PROJECT_BLOCK_ID = "schedule_project"
PROJECT_ACTION_ID = "schedule_project_select"
CHANNEL_BLOCK_ID = "schedule_channel"
CHANNEL_ACTION_ID = "schedule_channel_select"
WEEKDAY_BLOCK_ID = "schedule_weekday"
WEEKDAY_ACTION_ID = "schedule_weekday_select"
TIME_BLOCK_ID = "schedule_time"
TIME_ACTION_ID = "schedule_time_select"
TIMEZONE_BLOCK_ID = "schedule_timezone"
TIMEZONE_ACTION_ID = "schedule_timezone_select"
SELECTION_BLOCK_ID = "schedule_selection"
SELECTION_ACTION_ID = "schedule_selection_choice"
STATUSES_BLOCK_ID = "schedule_statuses"
STATUSES_ACTION_ID = "schedule_statuses_choice"
OPTIONS_BLOCK_ID = "schedule_options"
OPTIONS_ACTION_ID = "schedule_options_choice"
SKIP_EMPTY = "skip_empty"
PRIVATE_BLOCK_ID = "schedule_private"
PRIVATE_ACTION_ID = "schedule_private_choice"
INCLUDE_PRIVATE = "include_private"
PRIVATE_AUDIENCE_CONFIRMED = "private_audience_confirmed"
NAMES_LISTED = 8

DEFAULT_WEEKDAY = 0  # Monday
DEFAULT_TIME = "08:00"
TIMEZONE_OPTIONS_LIMIT = 100
COMMON_TIMEZONES = (
    "America/St_Johns",
    "America/Halifax",
    "America/Toronto",
    "America/New_York",
    "America/Chicago",
    "America/Winnipeg",
    "America/Denver",
    "America/Edmonton",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Vancouver",
    "America/Anchorage",
    "Pacific/Honolulu",
    "UTC",
    "Europe/London",
    "Europe/Paris",
)

# validate_spec field → the block showing its problem
FIELD_BLOCKS = {
    "channel_id": CHANNEL_BLOCK_ID,
    "weekday": WEEKDAY_BLOCK_ID,
    "time_of_day": TIME_BLOCK_ID,
    "timezone": TIMEZONE_BLOCK_ID,
    "selection": SELECTION_BLOCK_ID,
    "statuses": STATUSES_BLOCK_ID,
}


@dataclass(frozen=True)
class ScheduleModalMetadata:
    """What the modal carries (``private_metadata``): where the command was typed, by whom."""

    channel_id: str
    user_id: str

    def dump(self) -> str:
        """Compact JSON."""
        return json.dumps({"c": self.channel_id, "u": self.user_id})

    @classmethod
    def parse(cls, raw: str) -> ScheduleModalMetadata:
        """Read `dump` output back; ValueError when it is not ours."""
        try:
            data = json.loads(raw)
            return cls(channel_id=str(data["c"]), user_id=str(data["u"]))
        except (TypeError, KeyError, ValueError, AttributeError) as error:
            raise ValueError(f"not digest modal metadata: {raw!r}") from error


def timezone_option(name: str) -> Option:
    """One time zone in the select (its IANA name)."""
    return Option(value=name, label=shorten(name.replace("_", " "), PLAIN_LABEL_LIMIT))


def timezone_options(query: str, preferred: str | None = None) -> list[Option]:
    """Time zones whose IANA name holds every word of ``query`` (`commands.text_search`:
    ``los angeles`` finds America/Los_Angeles), common North American zones first; with no
    query, the common zones (``preferred`` first)."""
    words = query_words(query)
    if not words:
        names = list(dict.fromkeys([*([preferred] if preferred else []), *COMMON_TIMEZONES]))
    else:
        matching = sorted(name for name in available_timezones() if matches_every_word(words, name))
        common = [name for name in COMMON_TIMEZONES if name in matching]
        names = list(dict.fromkeys([*common, *matching]))
    return [timezone_option(name) for name in names[:TIMEZONE_OPTIONS_LIMIT]]


def _weekday_option(weekday: int) -> Option:
    return Option(value=str(weekday), label=WEEKDAYS[weekday])


def _selection_option(selection: str) -> Option:
    label = SELECTION_LABELS[selection]
    return Option(value=selection, label=label[:1].upper() + label[1:])


def _status_option(status: str) -> Option:
    return Option(value=status, label=status_label(status))


SKIP_EMPTY_OPTION = Option(
    value=SKIP_EMPTY,
    label="Skip empty weeks",
    description="Post nothing when there are no invoices to include",
)


INCLUDE_PRIVATE_OPTION = Option(
    value=INCLUDE_PRIVATE,
    label="Include private contracts",
    description="Everyone in the channel sees them; I name who is not on their lists",
)
PRIVATE_AUDIENCE_OPTION = Option(
    value=PRIVATE_AUDIENCE_CONFIRMED,
    label="I know who will see them",
    description="Check after I have named the channel members outside the private lists",
)


def _is_channel(conversation_id: str) -> bool:
    return conversation_id[:1] in ("C", "G")


def schedule_modal(
    projects: Sequence[ProjectChoice],
    metadata: ScheduleModalMetadata,
    *,
    timezone: str,
) -> View:
    """The modal, with defaults: the only project (if one), the channel where the command was
    typed, Mondays at 08:00 in ``timezone`` (the user's), the open billing period, the default
    statuses. ``projects`` (where the user is admin) must be non-empty."""
    if not projects:
        raise ValueError("the digest modal needs at least one project")
    shown = list(projects[:PROJECT_OPTIONS_LIMIT])
    project_select = StaticSelectElement(
        action_id=PROJECT_ACTION_ID,
        placeholder="Choose a project",
        options=[project_option(project) for project in shown],
        initial_option=project_option(shown[0]) if len(shown) == 1 else None,
    )
    channel_select = ConversationSelectElement(
        action_id=CHANNEL_ACTION_ID,
        placeholder="Choose a channel",
        initial_conversation=metadata.channel_id if _is_channel(metadata.channel_id) else None,
        filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
    )
    status_options = [_status_option(status) for status in INVOICE_STATUSES]
    return View(
        type="modal",
        callback_id=CALLBACK_ID,
        title="Weekly digest",
        submit="Schedule",
        close="Cancel",
        private_metadata=metadata.dump(),
        blocks=[
            context(
                "Every week, I compile the project's invoice backup and post it in the channel, "
                "with the PDF in the thread. I compile as you, checking your access at each run."
            ),
            InputBlock(block_id=PROJECT_BLOCK_ID, label="Project", element=project_select),
            InputBlock(
                block_id=CHANNEL_BLOCK_ID,
                label="Post in",
                element=channel_select,
                hint="I must be a member: /invite @Invoice Backups in that channel.",
            ),
            InputBlock(
                block_id=WEEKDAY_BLOCK_ID,
                label="Every",
                element=StaticSelectElement(
                    action_id=WEEKDAY_ACTION_ID,
                    options=[_weekday_option(day) for day in range(7)],
                    initial_option=_weekday_option(DEFAULT_WEEKDAY),
                ),
            ),
            InputBlock(
                block_id=TIME_BLOCK_ID,
                label="At",
                element=TimePickerElement(action_id=TIME_ACTION_ID, initial_time=DEFAULT_TIME),
            ),
            InputBlock(
                block_id=TIMEZONE_BLOCK_ID,
                label="Time zone",
                element=ExternalDataSelectElement(
                    action_id=TIMEZONE_ACTION_ID,
                    placeholder="Search time zones",
                    initial_option=timezone_option(timezone),
                    min_query_length=0,
                ),
                hint="Daylight-saving changes keep the time of day.",
            ),
            InputBlock(
                block_id=SELECTION_BLOCK_ID,
                label="Which invoices",
                element=RadioButtonsElement(
                    action_id=SELECTION_ACTION_ID,
                    options=[_selection_option(selection) for selection in SELECTION_LABELS],
                    initial_option=_selection_option("open_period"),
                ),
            ),
            InputBlock(
                block_id=STATUSES_BLOCK_ID,
                label="Only these statuses",
                optional=True,
                element=CheckboxesElement(
                    action_id=STATUSES_ACTION_ID,
                    options=status_options,
                    initial_options=[_status_option(status) for status in DEFAULT_STATUSES],
                ),
                hint="None checked: invoices of any status.",
            ),
            InputBlock(
                block_id=OPTIONS_BLOCK_ID,
                label=PlainTextObject(text="Empty weeks"),
                optional=True,
                element=CheckboxesElement(action_id=OPTIONS_ACTION_ID, options=[SKIP_EMPTY_OPTION]),
                hint="Unchecked: a one-line message says there was nothing to include.",
            ),
            InputBlock(
                block_id=PRIVATE_BLOCK_ID,
                label=PlainTextObject(text="Private contracts"),
                optional=True,
                element=CheckboxesElement(
                    action_id=PRIVATE_ACTION_ID,
                    options=[INCLUDE_PRIVATE_OPTION, PRIVATE_AUDIENCE_OPTION],
                ),
                hint="Unchecked: private contracts are left out of the digest.",
            ),
        ],
    )


def _value(values: Mapping[str, Any], block_id: str, action_id: str) -> Mapping[str, Any]:
    return values.get(block_id, {}).get(action_id, {}) or {}


def _selected(values: Mapping[str, Any], block_id: str, action_id: str) -> str | None:
    option = _value(values, block_id, action_id).get("selected_option") or {}
    return option.get("value")


def _checked(values: Mapping[str, Any], block_id: str, action_id: str) -> list[str]:
    options = _value(values, block_id, action_id).get("selected_options") or []
    return [str(option["value"]) for option in options if "value" in option]


@dataclass(frozen=True)
class ScheduleForm:
    """A submitted modal: the spec, or the errors (block id → message) that prevent one."""

    spec: ScheduleSpec | None
    errors: dict[str, str]
    private_audience_confirmed: bool = False  # the owner saw who outside the lists will see


def read_schedule_form(view: Mapping[str, Any]) -> ScheduleForm:
    """The spec of a submitted modal, checked with `validate_spec` (errors by block id)."""
    values: Mapping[str, Any] = (view.get("state") or {}).get("values") or {}
    errors: dict[str, str] = {}
    project_id = parse_id(_selected(values, PROJECT_BLOCK_ID, PROJECT_ACTION_ID))
    weekday = _selected(values, WEEKDAY_BLOCK_ID, WEEKDAY_ACTION_ID)
    private = _checked(values, PRIVATE_BLOCK_ID, PRIVATE_ACTION_ID)
    if project_id is None:
        errors[PROJECT_BLOCK_ID] = "Choose a project."
    if weekday is None or not (weekday.isascii() and weekday.isdigit() and len(weekday) == 1):
        errors[WEEKDAY_BLOCK_ID] = "Choose a day of the week."
        weekday = None
    spec = ScheduleSpec(
        project_id=project_id or 0,
        channel_id=str(
            _value(values, CHANNEL_BLOCK_ID, CHANNEL_ACTION_ID).get("selected_conversation") or ""
        ),
        weekday=int(weekday) if weekday is not None else -1,
        time_of_day=str(_value(values, TIME_BLOCK_ID, TIME_ACTION_ID).get("selected_time") or ""),
        timezone=_selected(values, TIMEZONE_BLOCK_ID, TIMEZONE_ACTION_ID) or "",
        selection=_selected(values, SELECTION_BLOCK_ID, SELECTION_ACTION_ID) or "",
        statuses=tuple(_checked(values, STATUSES_BLOCK_ID, STATUSES_ACTION_ID)),
        skip_empty=SKIP_EMPTY in _checked(values, OPTIONS_BLOCK_ID, OPTIONS_ACTION_ID),
        include_private=INCLUDE_PRIVATE in private,
    )
    errors = {**spec_errors(spec), **errors}
    confirmed = PRIVATE_AUDIENCE_CONFIRMED in private
    return ScheduleForm(None if errors else spec, errors, confirmed)


def private_audience_error(outsiders: Sequence[str]) -> str:
    """The warning under the private-contracts block naming the channel members (display
    names) who are on no private list concerned, and how to go ahead."""
    names = ", ".join(outsiders[:NAMES_LISTED])
    more = len(outsiders) - NAMES_LISTED
    if more > 0:
        names += f" and {more} more"
    return (
        f"{names} in that channel {'is' if len(outsiders) == 1 else 'are'} not on the private "
        "lists and would see private contracts' invoices. To go ahead, also check "
        '"I know who will see them"; or uncheck "Include private contracts".'
    )


def spec_errors(spec: ScheduleSpec) -> dict[str, str]:
    """`validate_spec` problems, by the block that shows each."""
    return {FIELD_BLOCKS[field]: problem for field, problem in validate_spec(spec).items()}


def channel_problem_error(problem: str) -> str:
    """The channel block's error when the bot can't post in the chosen channel (plain text):
    ``problem`` is a `bot.delivery.posting_problem` code."""
    if problem == "is_archived":
        return "That channel is archived. Choose another one."
    if problem == "not_a_channel":
        return "Digests go to channels only, not to direct messages. Choose a channel."
    if problem == "owner_not_member":
        return "You're not a member of that channel. Choose a channel you're in."
    if problem == "not_in_channel":
        reason = "I'm not a member of that channel"
    else:
        reason = "I can't see that channel (a private channel I'm not in)"
    return f"{reason}. Invite me there with /invite @Invoice Backups, then submit again."
