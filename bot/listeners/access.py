"""``/compile-backups access``: the manage-access modal (open, switch project, search project
users, save). Every read and change goes through `commands.manage_access`, which authorises
(project admins and bot owners) and audits each change."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.access import (
    CALLBACK_ID,
    DICTIONARY_LABELS,
    LINK_PROJECT_USER_ACTION_ID,
    PROJECT_ACTION_ID,
    PROJECT_BLOCK_ID,
    AccessForm,
    access_form_errors,
    access_modal,
    access_saved_view,
    dictionary_block_id,
    form_project_id,
    link_project_user_block_id,
    manage_refusal_message,
    project_user_options,
    read_access_form,
)
from bot.delivery import open_dm
from bot.listeners.forms import TAMPERED, sealed, switch_project, unsealed
from bot.listeners.guard import settled, user_of
from bot.listeners.replies import answer_privately, report_open_failure
from bot.listeners.submissions import ack_field_error, ack_temporary_problem
from bot.services import Services
from bot.standing import dictionary_of
from commands import audit
from commands.access import AccessDenied, ProjectChoice, Requester
from commands.ids import parse_id
from commands.manage_access import (
    InvalidChange,
    LinkChange,
    link_slack_user,
    manageable_projects,
    project_settings,
    roster,
    set_dictionary,
    set_invoice_contacts_may_compile,
    set_tie_out_blocks,
)
from storage.models import DICTIONARY_CHOICES

if TYPE_CHECKING:
    from bot.listeners.commands import CommandRequest

log = logging.getLogger(__name__)


class FieldError(Exception):
    """A change was refused; the message belongs under the input ``block_id``."""

    def __init__(self, block_id: str, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id


def _matching(projects: list[ProjectChoice], text: str) -> ProjectChoice | None:
    wanted = text.strip().casefold()
    if not wanted:
        return None
    for project in projects:
        if wanted in (project.project_number.casefold(), str(project.id), project.name.casefold()):
            return project
    return None


async def _form(
    requester: Requester,
    services: Services,
    projects: list[ProjectChoice],
    project_id: int,
    user_id: str,
) -> View:
    """The form for ``project_id``, its metadata sealed for ``user_id``."""
    settings = await project_settings(requester, project_id, services.owners)
    lines = await roster(requester, project_id, services.owners)
    return sealed(access_modal(projects, settings, lines), user_id, services.seal)


async def open_access_modal(request: CommandRequest) -> None:
    """Ack at once; then open the form on the first manageable project (or the one named after
    ``access``), or tell the user which permission they lack and whom to ask."""
    await request.ack()
    owners = request.services.owners
    try:
        requester = (await request.services.identities.resolve(request.user_id)).requester
        projects = await manageable_projects(requester, owners)
        if not projects:
            await audit.record(requester.key, "access.view", "refused")
            tool = (await dictionary_of(requester))["commitments"]
            refusal = manage_refusal_message(tool, sorted(owners))
            await answer_privately(request.client, request.payload, refusal)
            return
        selected = _matching(projects, request.argument) or projects[0]
        view = await _form(requester, request.services, projects, selected.id, request.user_id)
        await request.client.views_open(trigger_id=request.trigger_id, view=view)
    except Exception as error:
        await report_open_failure(request.client, request.payload, error, "the access form")


async def _switched_form(
    services: Services, user_id: str, view: dict[str, Any], chosen: Any
) -> View | None:
    """The access form rebuilt for the project chosen in its select (None: leave it)."""
    project_id = parse_id(chosen)
    if project_id is None:
        return None
    requester = (await services.identities.resolve(user_id)).requester
    projects = await manageable_projects(requester, services.owners)
    if project_id not in {project.id for project in projects}:
        return None
    return await _form(requester, services, projects, project_id, user_id)


async def load_project_user_options(
    ack: AsyncAck, body: dict[str, Any], services: Services
) -> None:
    """The project-user search: the form's project directory, by name or e-mail (nothing for
    someone who may not manage that project)."""
    user_id = user_of(body)
    view = await unsealed(body.get("view") or {}, user_id, services.seal, CALLBACK_ID)
    project_id = form_project_id(view) if view is not None else None
    if project_id is None:
        await ack(options=[])
        return
    try:
        requester = (await services.identities.resolve(user_id)).requester
        lines = await roster(requester, project_id, services.owners)
    except AccessDenied:
        await ack(options=[])
        return
    except Exception:
        log.exception("project user search failed")
        await ack(options=[])
        return
    await ack(options=project_user_options(lines, str(body.get("value") or "")))


async def apply_access_form(
    requester: Requester, form: AccessForm, owners: frozenset[str]
) -> tuple[ProjectChoice, list[str], LinkChange | None]:
    """Apply what changed (link first, then the settings, then the dictionary), each through
    `commands.manage_access`; returns the project, one line per change and the link made (if
    any). Raises `AccessDenied`, or `FieldError` for a change refused as invalid."""
    assert form.project_id is not None
    project_id = form.project_id
    current = await project_settings(requester, project_id, owners)
    changes: list[str] = []
    link: LinkChange | None = None
    if form.slack_user_id is not None and form.project_user_id is not None:
        try:
            link = await link_slack_user(
                requester, project_id, form.slack_user_id, form.project_user_id, owners
            )
        except InvalidChange as invalid:
            raise FieldError(link_project_user_block_id(project_id), str(invalid)) from invalid
        changes.append(link.confirmation)
    switches = (  # (wanted, stored, its use case, the change when on, when off)
        (
            form.contacts_may_compile,
            current.invoice_contacts_may_compile,
            set_invoice_contacts_may_compile,
            "Invoice contacts may now compile their own commitments' invoices.",
            "Invoice contacts may no longer compile backups.",
        ),
        (
            form.tie_out_blocks,
            current.tie_out_blocks,
            set_tie_out_blocks,
            "Invoices whose numbers do not tie out are now left out of backups.",
            "Invoices whose numbers do not tie out are now included (and flagged).",
        ),
    )
    for wanted, stored, set_switch, turned_on, turned_off in switches:
        if wanted is not None and wanted != stored:
            await set_switch(requester, project_id, wanted, owners)
            changes.append(turned_on if wanted else turned_off)
    renamed = {
        tool: name for tool, name in form.dictionary.items() if current.dictionary.get(tool) != name
    }
    if renamed:
        try:
            await set_dictionary(requester, project_id, renamed, owners)
        except InvalidChange as invalid:
            wrong = next(
                (t for t, n in renamed.items() if n not in DICTIONARY_CHOICES.get(t, ())),
                next(iter(renamed)),
            )
            raise FieldError(dictionary_block_id(wrong, project_id), str(invalid)) from invalid
        changes += [f"{DICTIONARY_LABELS.get(t, t)}: {n}." for t, n in renamed.items()]
    return current.project, changes, link


async def tell_linked_user(client: AsyncWebClient, link: LinkChange) -> None:
    """DM the person whose Slack account was just linked (a failure is logged, not raised:
    the link and its audit entry stand)."""
    try:
        dm = await open_dm(client, link.slack_user_id)
        await client.chat_postMessage(channel=dm, text=link.notice())
    except Exception as error:
        log.warning("could not tell %s about their new link: %s", link.slack_user_id, error)


async def submit_access_modal(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    """Save: a form not opened for this user is refused; refusals and invalid changes go under
    their field; otherwise the modal turns into a list of what changed, and the person linked
    (if any) is told by DM."""
    user_id = user_of(body)
    opened = await unsealed(view, user_id, services.seal, CALLBACK_ID)
    if opened is None:
        await ack_field_error(ack, PROJECT_BLOCK_ID, TAMPERED)
        return
    form = read_access_form(opened)
    errors = access_form_errors(form)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    try:
        requester = (await services.identities.resolve(user_id)).requester
        project, changes, link = await apply_access_form(requester, form, services.owners)
    except FieldError as refused:
        await ack_field_error(ack, refused.block_id, str(refused))
        return
    except AccessDenied as denied:
        await ack_field_error(ack, PROJECT_BLOCK_ID, str(denied))
        return
    except Exception as error:
        if await ack_temporary_problem(ack, error, PROJECT_BLOCK_ID, "access submission"):
            return
        raise
    await ack(response_action="update", view=access_saved_view(project, changes))
    if link is not None:
        await tell_linked_user(client, link)


def register(app: AsyncApp, services: Services) -> None:
    """Listen to the form's submission, its project select and its project-user search."""

    async def on_submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await submit_access_modal(ack, body, view, client, services)

    async def on_project_change(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        async def rebuild(user_id: str, view: dict[str, Any], chosen: Any) -> View | None:
            return await _switched_form(services, user_id, view, chosen)

        await switch_project(ack, body, client, services.seal, CALLBACK_ID, rebuild)

    async def on_project_user_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        await load_project_user_options(ack, body, services)

    app.view(CALLBACK_ID)(settled(on_submit))
    app.action(PROJECT_ACTION_ID)(settled(on_project_change))
    app.options(LINK_PROJECT_USER_ACTION_ID)(settled(on_project_user_options))
