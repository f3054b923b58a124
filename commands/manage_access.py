"""Managing access: link Slack users to project users, see who has which level, the
"invoice contacts may compile" and "leave out invoices that do not tie out" settings and the
workspace dictionary.

Allowed to project admins (Admin on the Commitments tool) and to bot owners (``BACKUPS_OWNERS``,
Slack user ids, passed in as `owners`). Owners manage access everywhere but do not get
Commitments admin by that alone. Every change, and every refusal, is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands import audit
from commands.access import (
    AccessDenied,
    ProjectAccess,
    ProjectChoice,
    Requester,
    access_for_role,
    project_access,
    projects_of,
    role_of_user,
    role_on_project,
)
from commands.ids import parse_id
from commands.permissions import access_rank
from storage.links import SlackLink
from storage.models import DICTIONARY_CHOICES, Commitment, Project, ProjectUser


class InvalidChange(ValueError):
    """The change asked for makes no sense (unknown user or dictionary entry); says why."""


@dataclass(frozen=True)
class RosterLine:
    """One project user and their standing."""

    user_id: int
    name: str
    email: str
    commitments_access: str
    is_active: bool
    linked_slack_user_ids: tuple[str, ...]
    invoice_contact_of: tuple[str, ...]
    access_known: bool = True  # False: the level could not be read from the source (none)


@dataclass(frozen=True)
class ProjectSettings:
    """The per-project settings an admin can change from Slack or the command line."""

    project: ProjectChoice
    invoice_contacts_may_compile: bool
    dictionary: dict[str, str]
    tie_out_blocks: bool = False
    # Private commitments whose private list could not be read: nobody but the owners sees them.
    unreadable_private_lists: tuple[str, ...] = ()


def is_owner(requester: Requester, owners: frozenset[str]) -> bool:
    """True for a bot owner (by Slack user id)."""
    return requester.slack_user_id is not None and requester.slack_user_id in owners


async def may_manage(requester: Requester, project_id: int, owners: frozenset[str]) -> bool:
    """Bot owners manage every project; project admins manage theirs."""
    if is_owner(requester, owners):
        return True
    return (await role_on_project(requester, project_id)).is_admin


async def manageable_projects(requester: Requester, owners: frozenset[str]) -> list[ProjectChoice]:
    """Projects whose access the requester may manage."""
    projects = (
        await Project.all().order_by("name")
        if is_owner(requester, owners)
        else await projects_of(requester)
    )
    choices = []
    for project in projects:
        if await may_manage(requester, project.id, owners):
            choices.append(ProjectChoice(project.id, project.name, project.project_number))
    return choices


async def _managed_project(
    requester: Requester, project_id: int, owners: frozenset[str], action: str
) -> Project:
    project = await Project.get_or_none(id=project_id)
    if project is None or not await may_manage(requester, project_id, owners):
        await audit.record(requester.key, action, "refused", project_id=project_id)
        role = await role_on_project(requester, project_id) if project is not None else None
        member = role is not None and role.user_id is not None and role.is_active
        tool = (project.dictionary or {}).get("commitments") if project and member else None
        raise AccessDenied(
            f"You need *Admin* on the {tool or 'Commitments'} tool of that project, or to be an "
            "owner of this bot, to manage access. Ask a project admin."
        )
    return project


async def project_settings(
    requester: Requester, project_id: int, owners: frozenset[str]
) -> ProjectSettings:
    """The project's current settings (for the access modal)."""
    project = await _managed_project(requester, project_id, owners, "access.view")
    return ProjectSettings(
        ProjectChoice(project.id, project.name, project.project_number),
        bool(project.invoice_contacts_may_compile),
        project.names(),
        tie_out_blocks=bool(project.tie_out_blocks),
        unreadable_private_lists=tuple(
            await Commitment.filter(project_id=project.id, private=True, private_list_known=False)
            .order_by("number")
            .values_list("number", flat=True)
        ),
    )


async def roster(requester: Requester, project_id: int, owners: frozenset[str]) -> list[RosterLine]:
    """Everyone in the project's directory with their level, links and invoice contacts."""
    await _managed_project(requester, project_id, owners, "access.view")
    links: dict[int, list[str]] = {}
    for link in await SlackLink.filter(project_id=project_id).order_by("slack_user_id"):
        links.setdefault(link.user_id, []).append(link.slack_user_id)
    contacts: dict[int, list[str]] = {}
    for commitment in await Commitment.filter(project_id=project_id).order_by("number"):
        for contact in commitment.invoice_contacts or []:
            if contact.get("id") is not None:
                contacts.setdefault(int(contact["id"]), []).append(commitment.number)
    users = await ProjectUser.filter(project_id=project_id).order_by("name", "user_id")
    return [
        RosterLine(
            user_id=user.user_id,
            name=user.name,
            email=user.email_address,
            commitments_access=user.commitments_access if user.access_known else "none",
            is_active=user.is_active,
            linked_slack_user_ids=tuple(links.get(user.user_id, [])),
            invoice_contact_of=tuple(contacts.get(user.user_id, [])),
            access_known=user.access_known,
        )
        for user in users
    ]


@dataclass(frozen=True)
class LinkChange:
    """A link made: what to confirm to the admin and what to tell the person linked."""

    slack_user_id: str
    project_user_name: str
    project_user_email: str
    project_name: str
    linked_by: str  # display name of who made the link
    confirmation: str

    def __str__(self) -> str:
        return self.confirmation

    def notice(self) -> str:
        """The message for the person linked (mrkdwn)."""
        return (
            f"{self.linked_by} linked your Slack account to *{self.project_user_name}* "
            f"({self.project_user_email}) on *{self.project_name}*: I now check your access to "
            "that project as that project user. If this is not you, tell a project admin."
        )


def outranks(target: ProjectAccess, linker: ProjectAccess) -> bool:
    """True when the project user ``target`` has rights the ``linker`` lacks on the project:
    a higher Commitments level, or (for a linker who is not admin) a commitment they may see
    or compile that the linker may not."""
    if access_rank(target.role) > access_rank(linker.role):
        return True
    if linker.role.is_admin:
        return False
    return not (
        target.visible_commitment_ids <= linker.visible_commitment_ids
        and target.compilable_commitment_ids <= linker.compilable_commitment_ids
    )


async def _refuse_link(
    requester: Requester, project_id: int, slack_user_id: str, reason: str, message: str
) -> InvalidChange:
    await audit.record(
        requester.key,
        "access.link",
        "refused",
        project_id=project_id,
        slack_user=slack_user_id,
        reason=reason,
    )
    return InvalidChange(message)


async def link_slack_user(
    requester: Requester,
    project_id: int,
    slack_user_id: str,
    user_email_or_id: str,
    owners: frozenset[str],
) -> LinkChange:
    """Link a Slack user to a project user (by e-mail or Procore id); returns the change.

    Nobody links their own Slack account, and nobody links an account to a project user with
    more rights on the project than they have themselves (`outranks`); refusals raise
    `InvalidChange` and, like every link made, are audited."""
    project = await _managed_project(requester, project_id, owners, "access.link")
    if requester.slack_user_id is not None and slack_user_id == requester.slack_user_id:
        raise await _refuse_link(
            requester,
            project_id,
            slack_user_id,
            "own_account",
            "You can't link your own Slack account. Ask another project admin or bot owner.",
        )
    wanted = user_email_or_id.strip()
    query = ProjectUser.filter(project_id=project_id)
    if wanted.isdigit():
        user_id = parse_id(wanted)
        if user_id is None:
            raise InvalidChange(f"No project user {wanted[:40]!r} in this project.")
        query = query.filter(user_id=user_id)
    else:
        query = query.filter(email_lower=wanted.lower())
    user = await query.first()
    if user is None:
        raise InvalidChange(f"No project user {wanted[:40]!r} in this project.")
    linker = await project_access(requester, project)
    target = await access_for_role(project, role_of_user(user))
    if outranks(target, linker):
        raise await _refuse_link(
            requester,
            project_id,
            slack_user_id,
            "more_rights_than_linker",
            f"{user.name} has more rights on this project than you do, so you can't link an "
            "account to them. Ask a project admin with at least those rights.",
        )
    before = await SlackLink.get_or_none(slack_user_id=slack_user_id, project_id=project_id)
    await SlackLink.update_or_create(
        slack_user_id=slack_user_id,
        project_id=project_id,
        defaults={"user_id": user.user_id, "created_by": requester.key},
    )
    await audit.record(
        requester.key,
        "access.link",
        "succeeded",
        project_id=project_id,
        slack_user=slack_user_id,
        project_user=user.user_id,
        before=before.user_id if before is not None else None,
    )
    return LinkChange(
        slack_user_id=slack_user_id,
        project_user_name=user.name,
        project_user_email=user.email_address,
        project_name=project.name,
        linked_by=requester.display_name,
        confirmation=f"<@{slack_user_id}> is now {user.name} ({user.email_address}) "
        "on this project.",
    )


async def unlink_slack_user(
    requester: Requester, project_id: int, slack_user_id: str, owners: frozenset[str]
) -> bool:
    """Remove an explicit link; returns whether one existed."""
    await _managed_project(requester, project_id, owners, "access.unlink")
    removed = await SlackLink.filter(slack_user_id=slack_user_id, project_id=project_id).delete()
    await audit.record(
        requester.key,
        "access.unlink",
        "succeeded" if removed else "unchanged",
        project_id=project_id,
        slack_user=slack_user_id,
    )
    return bool(removed)


async def set_invoice_contacts_may_compile(
    requester: Requester, project_id: int, allowed: bool, owners: frozenset[str]
) -> None:
    """Turn the project's "invoice contacts may compile" setting on or off."""
    await _set_project_setting(
        requester, project_id, owners, "invoice_contacts_may_compile", allowed
    )


async def set_tie_out_blocks(
    requester: Requester, project_id: int, blocks: bool, owners: frozenset[str]
) -> None:
    """Turn the project's "leave out invoices that do not tie out" setting on or off."""
    await _set_project_setting(requester, project_id, owners, "tie_out_blocks", blocks)


async def _set_project_setting(
    requester: Requester, project_id: int, owners: frozenset[str], name: str, value: bool
) -> None:
    """Set one boolean setting of a project the requester manages, audited with its old value."""
    project = await _managed_project(requester, project_id, owners, "access.setting")
    before = bool(getattr(project, name))
    setattr(project, name, value)
    await project.save(update_fields=[name])
    await audit.record(
        requester.key,
        "access.setting",
        "succeeded",
        project_id=project_id,
        before=before,
        **{name: value},
    )


async def set_dictionary(
    requester: Requester, project_id: int, names: dict[str, str], owners: frozenset[str]
) -> dict[str, str]:
    """Choose the tool names used in messages; unknown tools or names are refused."""
    project = await _managed_project(requester, project_id, owners, "access.dictionary")
    dictionary = project.names()
    for tool, name in names.items():
        allowed = DICTIONARY_CHOICES.get(tool)
        if allowed is None or name not in allowed:
            choices = ", ".join(f"{t}: {' / '.join(n)}" for t, n in DICTIONARY_CHOICES.items())
            raise InvalidChange(f"Unknown dictionary entry {tool}={name!r}. Choices: {choices}.")
        dictionary[tool] = name
    project.dictionary = dictionary
    await project.save(update_fields=["dictionary"])
    await audit.record(
        requester.key, "access.dictionary", "succeeded", project_id=project_id, **dictionary
    )
    return dictionary
