"""Who would see private contracts: the members of an audience (e.g. a Slack channel's members)
that are not on every private list concerned. Asks the permission module; decides nothing
itself."""

from __future__ import annotations

from collections.abc import Iterable

from commands.access import Requester, project_access
from storage.models import Commitment, Invoice, Project


async def private_commitment_ids(
    project_id: int, invoice_ids: Iterable[int] | None = None
) -> frozenset[int]:
    """The project's private commitments (only those of ``invoice_ids`` when given)."""
    query = Commitment.filter(project_id=project_id, private=True)
    if invoice_ids is not None:
        wanted = list(invoice_ids)
        commitment_ids = await Invoice.filter(project_id=project_id, id__in=wanted).values_list(
            "commitment_id", flat=True
        )
        query = query.filter(id__in=list(commitment_ids))
    return frozenset(int(c) for c in await query.values_list("id", flat=True))


async def outside_private_lists(
    project_id: int, commitment_ids: frozenset[int], audience: Iterable[Requester]
) -> list[Requester]:
    """The members of ``audience`` who may not see every one of ``commitment_ids`` (none when
    that set is empty)."""
    if not commitment_ids:
        return []
    project = await Project.get_or_none(id=project_id)
    if project is None:
        return list(audience)
    outsiders: list[Requester] = []
    for requester in audience:
        access = await project_access(requester, project)
        if not commitment_ids <= access.visible_commitment_ids:
            outsiders.append(requester)
    return outsiders
