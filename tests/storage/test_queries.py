"""Shared read queries, on the sample bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundles import PROJECT_ID, write_bundle

from commands.import_bundle import import_bundle
from storage.blobs import LocalBlobStore
from storage.models import Project
from storage.queries import (
    AmbiguousProjectError,
    billing_period_ids,
    find_project_user_by_email,
    get_project_by_id_or_number,
    load_invoices,
    project_invoices,
)


@pytest.fixture
async def sample_project(database: str, tmp_path: Path, data_dir: Path) -> int:
    await import_bundle(write_bundle(tmp_path / "bundle"), LocalBlobStore(data_dir))
    return PROJECT_ID


async def test_project_by_id_or_number(sample_project: int) -> None:
    by_id = await get_project_by_id_or_number(f" {sample_project} ")
    by_number = await get_project_by_id_or_number("hv-2026")
    assert by_id is not None and by_id.id == sample_project
    assert by_number is not None and by_number.id == sample_project
    assert await get_project_by_id_or_number("12345") is None
    assert await get_project_by_id_or_number("") is None


async def test_a_number_shared_by_two_projects_is_ambiguous(sample_project: int) -> None:
    await Project.create(
        id=77, name="Elsewhere", project_number="HV-2026", company_id=5, company_name="Other"
    )
    with pytest.raises(AmbiguousProjectError) as ambiguous:
        await get_project_by_id_or_number("HV-2026")
    assert [project.id for project in ambiguous.value.projects] == [77, sample_project]
    by_id = await get_project_by_id_or_number("77")
    assert by_id is not None and by_id.name == "Elsewhere"


async def test_load_invoices_keeps_the_order_asked_and_loads_relations(
    sample_project: int,
) -> None:
    invoices = await load_invoices(sample_project, [7003, 999, 7001, 7003])

    assert [invoice.id for invoice in invoices] == [7003, 7001]
    assert invoices[0].commitment.number == "SC-10"
    assert [attachment.id for attachment in invoices[1].attachments] == [60001]
    assert await load_invoices(sample_project, []) == []


async def test_load_invoices_never_crosses_projects(sample_project: int) -> None:
    await Project.create(id=77, name="Other", project_number="OT", company_id=5, company_name="X")
    assert await load_invoices(77, [7001, 7002]) == []


async def test_project_invoices(sample_project: int) -> None:
    invoices = await project_invoices(sample_project)
    assert [invoice.id for invoice in invoices] == [7001, 7002, 7003]
    assert invoices[2].commitment.private is True


async def test_billing_period_ids(sample_project: int) -> None:
    assert await billing_period_ids(sample_project) == {801, 802}
    assert await billing_period_ids(77) == set()


async def test_find_project_user_by_email_ignores_case(sample_project: int) -> None:
    user = await find_project_user_by_email(sample_project, " DANA.reyes@summit.EXAMPLE ")
    assert user is not None and user.user_id == 9000
    assert await find_project_user_by_email(sample_project, "nobody@summit.example") is None
    assert await find_project_user_by_email(sample_project, "") is None
