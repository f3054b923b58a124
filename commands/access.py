"""Who may see and compile which invoices: the one place every path asks.

The project select, the options search, the submission, the compile job, digests, App Home and
the CLI all call these functions; the rules themselves are pure (`commands.permissions`).
Nothing returned here ever names an invoice the requester may not see. Independent reads go out
at once (`asyncio.gather`, a pooled connection each; inside a transaction tortoise runs them one
after the other on its one connection).
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from tortoise import connections
from tortoise.queryset import QuerySet

from commands.invoice_search import search_invoices
from commands.labels import billing_period_label, invoice_option_label, more_matches_label
from commands.permissions import (
    CommitmentScope,
    ProjectRole,
    is_invoice_contact,
    may_compile_commitment,
    may_compile_on_project,
    may_see_commitment,
)
from pdf.formatting import format_period
from storage.links import SlackLink
from storage.models import BillingPeriod, Invoice, Project, ProjectUser
from storage.search_index import invoices_per_period, option_facts


@dataclass(frozen=True)
class Requester:
    """Who asks: a Slack user (e-mail from users.info) or a command-line user."""

    key: str
    email: str | None
    display_name: str
    slack_user_id: str | None = None


@dataclass(frozen=True)
class ProjectChoice:
    """A project offered to the requester."""

    id: int
    name: str
    project_number: str

    @property
    def label(self) -> str:
        """``"Riverside Tower (2026-014)"``."""
        return f"{self.name} ({self.project_number})" if self.project_number else self.name


@dataclass(frozen=True)
class InvoiceOption:
    """One invoice offered in a menu; `group` is its billing period label."""

    invoice_id: int
    label: str
    group: str
    period_id: int | None = None  # its billing period, when that period exists


@dataclass(frozen=True)
class WholePeriod:
    """A billing period offered as one choice: the invoices of it the requester may compile."""

    period_id: int
    dates: str  # "Oct 1–31, 2026"
    invoice_ids: tuple[int, ...]


@dataclass(frozen=True)
class PeriodSize:
    """A billing period as the options menu shows it ("All N invoices of …"): how many of its
    invoices the requester may compile (their ids are read only when it is picked)."""

    period_id: int
    dates: str
    invoice_count: int


SCOPE_CACHE_SIZE = 20_000  # parsed commitment rows kept (`_scope`); a few MB at the most

MISSING_PERIOD_GROUP = "No billing period: left out if picked (fix in Procore first)"


@dataclass(frozen=True)
class InvoiceMenu:
    """One answer of the invoice search: the options, and how many more invoices matched
    (`more_at_least`: at least that many) for the closing "type more" option."""

    options: list[InvoiceOption]
    more: int = 0
    more_at_least: bool = False
    # For a query without text: the periods of the options and their sizes ("All N invoices").
    period_sizes: tuple[PeriodSize, ...] = ()

    @property
    def more_label(self) -> str | None:
        """The closing option's text, or None when every match is shown."""
        return more_matches_label(self.more, self.more_at_least) if self.more else None


class AccessDenied(Exception):
    """The requester may not do this; ``str(exc)`` is the message to show them."""


# The refusal for a project that does not exist or of which the requester is not a member: it
# names nothing, so a guessed project id tells nothing.
NOT_A_MEMBER = (
    "You need *Admin* on the Commitments tool of that project to compile invoice backups. "
    "Ask a project admin to add you to the project."
)


@dataclass(frozen=True)
class ProjectAccess:
    """The requester's role on a project and the commitments they may see and compile."""

    project: Project
    role: ProjectRole
    visible_commitment_ids: frozenset[int]
    compilable_commitment_ids: frozenset[int]
    admins: tuple[str, ...] = field(default=())
    contact_commitments: int = 0  # commitments where the requester is an invoice contact

    @property
    def may_compile(self) -> bool:
        """True when at least one commitment's invoices may be compiled."""
        return bool(self.compilable_commitment_ids) or self.role.is_admin

    def tool_name(self) -> str:
        """The project's name for the Commitments tool (workspace dictionary)."""
        return self.project.names()["commitments"]

    @property
    def is_member(self) -> bool:
        """True when the requester is an active user of the project's directory."""
        return self.role.user_id is not None and self.role.is_active

    def denial(self) -> AccessDenied:
        """The refusal for this project: to a member, the permission lacking, where it is set
        and by whom; to anyone else, the same words as for a project that does not exist (no
        name, no admins, nothing about the project).

        An invoice contact hears about the "invoice contacts may compile" setting (a project
        admin turns it on here); a project user without it, that Admin on the tool is set in
        Procore's Directory by a Procore project admin.
        """
        if not self.is_member:
            return AccessDenied(NOT_A_MEMBER)
        who = ", ".join(self.admins[:3]) if self.admins else "a project admin"
        tool = self.tool_name()
        if self.contact_commitments:
            return AccessDenied(
                f"You are an invoice contact on {self.project.name}, but invoice contacts may "
                "compile only when a project admin turns on the setting “Invoice contacts may "
                f"compile their own commitments' invoices” (`/compile-backups access`). Ask {who} "
                f"to turn it on, or to give you Admin on the {tool} tool in Procore."
            )
        return AccessDenied(
            f"You need *Admin* on the {tool} tool of {self.project.name} to compile invoice "
            f"backups. Ask {who} to give it to you in Procore (the project's Directory tool, "
            "your permission template); it applies here once the project is next imported "
            "from Procore."
        )


def _scope(row: dict[str, Any]) -> CommitmentScope:
    """The rules' view of one commitment row (`_COMMITMENT_SCOPES`)."""
    return _scope_of(
        int(row["id"]),
        bool(row["private"]),
        _json_text(row["private_list"]),
        _json_text(row["invoice_contacts"]),
        bool(row["private_list_known"]),
    )


def _json_text(value: Any) -> str | bytes:
    """A JSON column as its text (both drivers give text; a parsed value is written back)."""
    return value if isinstance(value, str | bytes) else json.dumps(value)


# Every options load and compile reads every commitment of the project: each row is parsed
# once (the scope is a pure function of the row's values, and frozen).
@functools.lru_cache(maxsize=SCOPE_CACHE_SIZE)
def _scope_of(
    commitment_id: int,
    private: bool,
    private_list: str | bytes,
    contacts: str | bytes,
    private_list_known: bool,
) -> CommitmentScope:
    def ids(entries: list[dict]) -> frozenset[int]:
        return frozenset(int(entry["id"]) for entry in entries if entry.get("id") is not None)

    def emails(entries: list[dict]) -> frozenset[str]:
        return frozenset(str(entry["email"]).lower() for entry in entries if entry.get("email"))

    listed, contacted = _json_list(private_list), _json_list(contacts)
    return CommitmentScope(
        commitment_id=commitment_id,
        private=private,
        private_list_ids=ids(listed),
        private_list_emails=emails(listed),
        invoice_contact_ids=ids(contacted),
        invoice_contact_emails=emails(contacted),
        private_list_known=private_list_known,
    )


def _json_list(value: Any) -> list[dict]:
    """A JSON list column's entries that are objects (an empty list for "[]", null or junk)."""
    if isinstance(value, str | bytes):
        if value in ("[]", b"[]", ""):
            return []
        value = json.loads(value)
    if not isinstance(value, list):
        return []
    return [entry for entry in value if isinstance(entry, dict)]


# The columns the rules read, without building model instances (the options search asks on
# every keystroke; 250 commitments as models cost tens of milliseconds).
_COMMITMENT_SCOPES = (
    "SELECT id, private, private_list, invoice_contacts, private_list_known FROM commitments "
    "WHERE project_id = {mark}"
)


async def project_user_of(requester: Requester, project_id: int) -> ProjectUser | None:
    """The requester's project user: an explicit Slack link wins, else the e-mail match."""
    if requester.slack_user_id:
        link = await SlackLink.get_or_none(
            slack_user_id=requester.slack_user_id, project_id=project_id
        )
        if link is not None:
            return await ProjectUser.get_or_none(project_id=project_id, user_id=link.user_id)
    if not requester.email:
        return None
    return await ProjectUser.filter(
        project_id=project_id, email_lower=requester.email.strip().lower()
    ).first()


async def role_on_project(requester: Requester, project_id: int) -> ProjectRole:
    """The requester's standing on a project (no role when no project user matches)."""
    user = await project_user_of(requester, project_id)
    if user is None:
        return ProjectRole(user_id=None, email=requester.email.lower() if requester.email else None)
    return role_of_user(user)


def role_of_user(user: ProjectUser) -> ProjectRole:
    """The standing of a project user (e.g. one a Slack account is about to be linked to)."""
    return ProjectRole(
        user_id=user.user_id,
        email=user.email_address.lower(),
        commitments_access=user.commitments_access if user.access_known else "none",
        is_active=user.is_active,
        access_known=user.access_known,
    )


async def project_access(requester: Requester, project: Project) -> ProjectAccess:
    """Evaluate the rules for one project."""
    role, scope_rows = await asyncio.gather(
        role_on_project(requester, project.id), _commitment_scope_rows(project.id)
    )
    return await _evaluate(project, role, scope_rows)


async def access_for_role(project: Project, role: ProjectRole) -> ProjectAccess:
    """Evaluate the rules for one project and one standing."""
    return await _evaluate(project, role, await _commitment_scope_rows(project.id))


async def _commitment_scope_rows(project_id: int) -> list[dict[str, Any]]:
    connection = connections.get("default")
    mark = "$1" if connection.capabilities.dialect == "postgres" else "?"
    _, rows = await connection.execute_query(_COMMITMENT_SCOPES.format(mark=mark), [project_id])
    return rows


async def _evaluate(
    project: Project, role: ProjectRole, scope_rows: list[dict[str, Any]]
) -> ProjectAccess:
    scopes = [_scope(row) for row in scope_rows]
    contacts_may_compile = bool(project.invoice_contacts_may_compile)
    visible = frozenset(s.commitment_id for s in scopes if may_see_commitment(role, s))
    compilable = frozenset(
        s.commitment_id for s in scopes if may_compile_commitment(role, s, contacts_may_compile)
    )
    if not may_compile_on_project(role, scopes, contacts_may_compile):
        compilable = frozenset()
    admins: list[str] = []
    if not compilable and not role.is_admin:  # only a refusal names them
        admins = await ProjectUser.filter(
            project_id=project.id, commitments_access="admin", is_active=True, access_known=True
        ).values_list("name", flat=True)
    contacts = sum(1 for scope in scopes if is_invoice_contact(role, scope))
    return ProjectAccess(
        project, role, visible, compilable, tuple(str(a) for a in admins), contacts
    )


async def projects_of(requester: Requester) -> list[Project]:
    """Projects where the requester is a project user (by e-mail or by an explicit link)."""
    project_ids: set[int] = set()
    if requester.email:
        project_ids.update(
            await ProjectUser.filter(
                email_lower=requester.email.strip().lower(), is_active=True
            ).values_list("project_id", flat=True)
        )
    if requester.slack_user_id:
        project_ids.update(
            await SlackLink.filter(slack_user_id=requester.slack_user_id).values_list(
                "project_id", flat=True
            )
        )
    if not project_ids:
        return []
    return await Project.filter(id__in=sorted(project_ids)).order_by("name")


async def compilable_projects(requester: Requester) -> list[ProjectChoice]:
    """Projects where the requester may compile at least one invoice."""
    choices: list[ProjectChoice] = []
    for project in await projects_of(requester):
        access = await project_access(requester, project)
        if access.may_compile:
            choices.append(ProjectChoice(project.id, project.name, project.project_number))
    return choices


async def match_project(requester: Requester, text: str) -> ProjectChoice | None:
    """The compilable project whose number, id or name matches `text` (exact before partial)."""
    wanted = text.strip().casefold()
    if not wanted:
        return None
    choices = await compilable_projects(requester)
    for choice in choices:
        if wanted in (choice.project_number.casefold(), str(choice.id), choice.name.casefold()):
            return choice
    partial = [choice for choice in choices if wanted in choice.name.casefold()]
    return partial[0] if len(partial) == 1 else None


async def compile_access(requester: Requester, project_id: int) -> ProjectAccess:
    """The requester's access to a project they want to compile on; `AccessDenied` otherwise.

    An unknown project gets the same answer as a forbidden one, so nothing is revealed.
    """
    project, role, scope_rows = await asyncio.gather(
        Project.get_or_none(id=project_id),
        role_on_project(requester, project_id),
        _commitment_scope_rows(project_id),
    )
    if project is None:
        raise AccessDenied(NOT_A_MEMBER)
    access = await _evaluate(project, role, scope_rows)
    if not access.may_compile:
        raise access.denial()
    return access


def compilable_invoices(access: ProjectAccess) -> QuerySet[Invoice]:
    """The project's invoices the requester of ``access`` may compile (a query to refine)."""
    return Invoice.filter(
        project_id=access.project.id,
        commitment_id__in=list(access.compilable_commitment_ids),
    )


async def visible_invoice_ids(access: ProjectAccess, invoice_ids: list[int]) -> set[int]:
    """The subset of `invoice_ids` that exists in the project of ``access`` and that its
    requester may compile."""
    rows = (
        await compilable_invoices(access)
        .filter(id__in=list(invoice_ids))
        .values_list("id", flat=True)
    )
    return {int(row) for row in rows}


@dataclass(frozen=True)
class CheckedSelection:
    """A modal's choice under the access rules: the chosen invoices the requester may compile,
    and the chosen whole periods expanded (`whole_periods`)."""

    visible_invoice_ids: set[int]
    whole_periods: list[WholePeriod]


async def check_selection(
    requester: Requester, project_id: int, invoice_ids: list[int], period_ids: list[int]
) -> CheckedSelection:
    """`visible_invoice_ids` and `whole_periods` of a submission under one access check;
    `AccessDenied` when the requester may compile nothing on the project."""
    access = await compile_access(requester, project_id)
    visible, wholes = await asyncio.gather(
        visible_invoice_ids(access, invoice_ids), whole_periods(access, period_ids)
    )
    return CheckedSelection(visible, wholes)


async def search_invoice_options(
    requester: Requester, project_id: int, query: str, limit: int = 100, count_periods: bool = False
) -> InvoiceMenu:
    """Invoices the requester may compile that match ``query`` (`commands.invoice_search`: every
    word, ranked), at most ``limit`` options counting the closing "type more" one. With
    ``count_periods`` and a blank ``query``, also the `PeriodSize` of each period among the
    options (under the same access check, the periods as the options read them)."""
    try:
        access = await compile_access(requester, project_id)
    except AccessDenied:
        return InvoiceMenu([])
    matches = await search_invoices(project_id, access.compilable_commitment_ids, query, limit)
    options, period_dates = await _invoice_options(matches.invoice_ids)
    sizes = (
        await _period_sizes(access, period_dates)
        if count_periods and options and not query.strip()
        else ()
    )
    return InvoiceMenu(options, matches.more, matches.more_at_least, sizes)


async def _invoice_options(invoice_ids: list[int]) -> tuple[list[InvoiceOption], dict[int, str]]:
    """The options of these invoices, in this order, grouped by billing period label; and the
    dates of their (existing) billing periods, by period id."""
    facts = await option_facts(invoice_ids)
    options: list[InvoiceOption] = []
    period_dates: dict[int, str] = {}
    for invoice_id in invoice_ids:
        row = facts.get(invoice_id)
        if row is None:  # deleted since the search: nothing to offer
            continue
        period = row.period
        group = (
            billing_period_label(period.position, period.start_date, period.end_date)
            if period
            else MISSING_PERIOD_GROUP
        )
        label = invoice_option_label(
            row.contract_number,
            row.vendor_name,
            row.application_number,
            row.invoice_number,
            None if period else row.requisition_end,  # the group header shows the dates
            row.current_payment_due,
            row.status,
        )
        options.append(InvoiceOption(invoice_id, label, group, row.period_id if period else None))
        if period:
            period_dates[row.period_id] = format_period(period.start_date, period.end_date)
    return options, period_dates


async def _period_sizes(
    access: ProjectAccess, period_dates: dict[int, str]
) -> tuple[PeriodSize, ...]:
    """Each of these periods with how many of its invoices the requester of ``access`` may
    compile (counted, not listed: a period holds thousands at 100,000 invoices)."""
    counts = await invoices_per_period(
        access.project.id, list(period_dates), access.compilable_commitment_ids
    )
    return tuple(
        PeriodSize(period_id, dates, counts[period_id])
        for period_id, dates in period_dates.items()
        if counts.get(period_id)
    )


async def whole_periods(access: ProjectAccess, period_ids: list[int]) -> list[WholePeriod]:
    """The existing billing periods among `period_ids`, each with the invoices of it that the
    requester of ``access`` may compile (newest application first). The one place a "whole
    period" choice is expanded."""
    periods, rows = await asyncio.gather(
        BillingPeriod.filter(project_id=access.project.id, id__in=list(period_ids)),
        compilable_invoices(access)
        .filter(period_id__in=list(period_ids))
        .order_by("-number", "-id")
        .values_list("id", "period_id"),
    )
    by_period: dict[int, list[int]] = {}
    for invoice_id, period_id in rows:
        by_period.setdefault(int(period_id), []).append(int(invoice_id))
    order = {period_id: index for index, period_id in enumerate(period_ids)}
    return [
        WholePeriod(
            period.id,
            format_period(period.start_date, period.end_date),
            tuple(by_period[period.id]),
        )
        for period in sorted(periods, key=lambda period: order.get(period.id, 0))
        if period.id in by_period
    ]
