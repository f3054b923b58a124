"""Read queries several callers share (compile, menus, CLI, permissions).

Every invoice query is scoped to one project, so an id from another project never leaks in.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.query_utils import Prefetch

from storage.models import Attachment, BillingPeriod, Invoice, Project, ProjectUser, normalize_email


class AmbiguousProjectError(LookupError):
    """A project number shared by several projects (of different companies)."""

    def __init__(self, value: str, projects: list[Project]) -> None:
        self.projects = projects
        ids = ", ".join(str(project.id) for project in projects)
        super().__init__(f"project number {value!r} matches several projects (ids {ids})")


async def get_project_by_id_or_number(value: str) -> Project | None:
    """The project whose Procore id, else whose project number (any case), is ``value`` (trimmed).

    None if nothing matches; `AmbiguousProjectError` if the number matches several projects.
    """
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        project = await Project.get_or_none(id=int(value))
        if project is not None:
            return project
    projects = await Project.filter(project_number__iexact=value).order_by("id")
    if len(projects) > 1:
        raise AmbiguousProjectError(value, projects)
    return projects[0] if projects else None


def _attachments_in_order() -> Prefetch:
    return Prefetch("attachments", queryset=Attachment.all().order_by("position", "id"))


async def load_invoices(project_id: int, ids: Iterable[int]) -> list[Invoice]:
    """The project's invoices among ``ids``, in the order of ``ids`` (unknown ids skipped),
    with `commitment` and `attachments` (by position) loaded."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    invoices = (
        await Invoice.filter(project_id=project_id, id__in=wanted)
        .select_related("commitment")
        .prefetch_related(_attachments_in_order())
    )
    by_id = {invoice.id: invoice for invoice in invoices}
    return [by_id[invoice_id] for invoice_id in wanted if invoice_id in by_id]


async def project_invoices(project_id: int) -> list[Invoice]:
    """All invoices of the project, with `commitment` loaded (attachments not loaded)."""
    return (
        await Invoice.filter(project_id=project_id)
        .select_related("commitment")
        .order_by("commitment_id", "number", "id")
    )


async def billing_period_ids(project_id: int) -> set[int]:
    """Ids of the billing periods that exist in the project."""
    ids = await BillingPeriod.filter(project_id=project_id).values_list("id", flat=True)
    return {int(period_id) for period_id in ids}


async def find_project_user_by_email(project_id: int, email: str) -> ProjectUser | None:
    """The project's user with this e-mail address (case-insensitive), or None."""
    email_lower = normalize_email(email)
    if not email_lower:
        return None
    return (
        await ProjectUser.filter(project_id=project_id, email_lower=email_lower)
        .order_by("-is_active", "id")
        .first()
    )
