"""Property: over random role assignments, every invoice offered in the search and every invoice
a compile would take is one the pure rules allow, and every one they allow is offered."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.access import (
    AccessDenied,
    Requester,
    check_selection,
    project_access,
    search_invoice_options,
)
from commands.demo import PROJECT_ID, write_demo_bundle
from commands.import_bundle import import_bundle
from commands.permissions import CommitmentScope, ProjectRole, may_compile_commitment
from storage.blobs import LocalBlobStore
from storage.db import close_database, open_database
from storage.models import BillingPeriod, Commitment, Invoice, Project, ProjectUser

USER_IDS = (1, 2, 3, 4, 5)  # the demo directory
LEVELS = ("none", "read_only", "standard", "admin")


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("property")
    url = f"sqlite://{folder / 'db.sqlite3'}"

    async def prepare() -> None:
        await open_database(url, migrate=True)
        try:
            await import_bundle(
                write_demo_bundle(folder / "bundle"), LocalBlobStore(folder / "data")
            )
        finally:
            await close_database()

    asyncio.run(prepare())
    return url


assignments = st.fixed_dictionaries(
    {
        "levels": st.tuples(*(st.sampled_from(LEVELS) for _ in USER_IDS)),
        "active": st.tuples(*(st.booleans() for _ in USER_IDS)),
        "contacts_may_compile": st.booleans(),
        "private": st.tuples(st.booleans(), st.booleans(), st.booleans()),
        "asker": st.sampled_from(USER_IDS),
    }
)


async def check(url: str, assignment: dict) -> None:
    await open_database(url)
    try:
        for user_id, level, active in zip(
            USER_IDS, assignment["levels"], assignment["active"], strict=True
        ):
            await ProjectUser.filter(project_id=PROJECT_ID, user_id=user_id).update(
                commitments_access=level, is_active=active
            )
        await Project.filter(id=PROJECT_ID).update(
            invoice_contacts_may_compile=assignment["contacts_may_compile"]
        )
        commitments = await Commitment.filter(project_id=PROJECT_ID).order_by("id")
        for commitment, private in zip(commitments, assignment["private"], strict=True):
            await Commitment.filter(id=commitment.id).update(private=private)

        asker = await ProjectUser.get(project_id=PROJECT_ID, user_id=assignment["asker"])
        requester = Requester(key="prop", email=asker.email_address, display_name=asker.name)
        role = ProjectRole(
            asker.user_id, asker.email_address, asker.commitments_access, asker.is_active
        )
        allowed_commitments = {
            c.id
            for c in await Commitment.filter(project_id=PROJECT_ID)
            if may_compile_commitment(role, scope_of(c), assignment["contacts_may_compile"])
        }
        allowed = set(
            await Invoice.filter(
                project_id=PROJECT_ID, commitment_id__in=list(allowed_commitments)
            ).values_list("id", flat=True)
        )
        every_id = list(await Invoice.filter(project_id=PROJECT_ID).values_list("id", flat=True))

        menu = await search_invoice_options(requester, PROJECT_ID, "", count_periods=True)
        offered = {o.invoice_id for o in menu.options}
        assert offered == allowed
        # "All N invoices of …": N counts the allowed invoices of each period offered, no more.
        periods_offered = {o.period_id for o in menu.options if o.period_id is not None}
        allowed_periods = await Invoice.filter(id__in=list(allowed)).values_list(
            "period_id", flat=True
        )
        counted = Counter(period for period in allowed_periods if period in periods_offered)
        assert {size.period_id: size.invoice_count for size in menu.period_sizes} == counted
        # A submission of every invoice and every period ("All N invoices of …").
        period_ids = list(
            await BillingPeriod.filter(project_id=PROJECT_ID).values_list("id", flat=True)
        )
        try:
            checked = await check_selection(requester, PROJECT_ID, every_id, period_ids)
            compilable = checked.visible_invoice_ids
            in_periods = [i for whole in checked.whole_periods for i in whole.invoice_ids]
        except AccessDenied:
            compilable, in_periods = set(), []
            access = await project_access(requester, await Project.get(id=PROJECT_ID))
            assert not access.may_compile
        assert compilable == allowed
        with_period = await Invoice.filter(
            id__in=list(allowed), period_id__in=period_ids
        ).values_list("id", flat=True)
        assert sorted(in_periods) == sorted(with_period)
    finally:
        await close_database()


def scope_of(commitment: Commitment) -> CommitmentScope:
    return CommitmentScope(
        commitment_id=commitment.id,
        private=commitment.private,
        private_list_ids=frozenset(int(e["id"]) for e in commitment.private_list or []),
        private_list_emails=frozenset(e["email"].lower() for e in commitment.private_list or []),
        invoice_contact_ids=frozenset(int(e["id"]) for e in commitment.invoice_contacts or []),
        invoice_contact_emails=frozenset(
            e["email"].lower() for e in commitment.invoice_contacts or []
        ),
    )


@settings(max_examples=40, deadline=None)
@given(assignment=assignments)
def test_offered_and_compiled_invoices_are_exactly_what_the_rules_allow(
    demo_database: str, assignment: dict
) -> None:
    asyncio.run(check(demo_database, assignment))
