"""The permission rules as a table: role × commitment kind × setting → see / compile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.permissions import (
    ACCESS_LEVELS,
    CommitmentScope,
    ProjectRole,
    may_compile_commitment,
    may_compile_on_project,
    may_see_commitment,
)

CONTACT_ID = 40
LISTED_ID = 50
PUBLIC = CommitmentScope(
    commitment_id=1,
    private=False,
    invoice_contact_ids=frozenset({CONTACT_ID}),
    invoice_contact_emails=frozenset({"contact@sub.example"}),
)
PRIVATE = CommitmentScope(
    commitment_id=2,
    private=True,
    private_list_ids=frozenset({LISTED_ID}),
    private_list_emails=frozenset({"listed@gc.example"}),
    invoice_contact_ids=frozenset({CONTACT_ID}),
)
# A private contract whose list the source could not read (stored as an empty list).
UNREAD_LIST = CommitmentScope(
    commitment_id=3,
    private=True,
    invoice_contact_ids=frozenset({CONTACT_ID}),
    private_list_known=False,
)

ROLES = {
    "admin": ProjectRole(1, "admin@gc.example", "admin"),
    "inactive admin": ProjectRole(9, "gone@gc.example", "admin", is_active=False),
    "standard": ProjectRole(2, "std@gc.example", "standard"),
    "read_only": ProjectRole(3, "ro@gc.example", "read_only"),
    "none": ProjectRole(4, "none@gc.example", "none"),
    "invoice contact": ProjectRole(CONTACT_ID, "contact@sub.example", "none"),
    "contact by e-mail": ProjectRole(None, "CONTACT@sub.example", "none"),
    "private-list member": ProjectRole(LISTED_ID, "listed@gc.example", "read_only"),
    "unknown e-mail": ProjectRole(None, "stranger@else.example", "none"),
    # Level not determined by the source: stored as "none" (fail closed).
    "level unknown": ProjectRole(11, "unsure@gc.example", "none", access_known=False),
    "contact, level unknown": ProjectRole(
        CONTACT_ID, "contact@sub.example", "none", access_known=False
    ),
    # Even a stored "admin" counts for nothing while the level is unknown.
    "admin, level unknown": ProjectRole(12, "was@gc.example", "admin", access_known=False),
}

# role, commitment, setting on → (sees, may compile)
MATRIX = [
    ("admin", PUBLIC, False, True, True),
    ("admin", PRIVATE, False, True, True),
    ("inactive admin", PUBLIC, True, False, False),
    ("standard", PUBLIC, True, True, False),
    ("standard", PRIVATE, True, False, False),
    ("read_only", PUBLIC, False, True, False),
    ("read_only", PRIVATE, False, False, False),
    ("none", PUBLIC, True, False, False),
    ("invoice contact", PUBLIC, False, True, False),
    ("invoice contact", PUBLIC, True, True, True),
    ("invoice contact", PRIVATE, True, False, False),
    ("contact by e-mail", PUBLIC, True, True, True),
    ("private-list member", PRIVATE, True, True, False),
    ("private-list member", PUBLIC, True, True, False),
    ("unknown e-mail", PUBLIC, True, False, False),
    ("unknown e-mail", PRIVATE, True, False, False),
    ("admin", UNREAD_LIST, True, False, False),
    ("standard", UNREAD_LIST, True, False, False),
    ("invoice contact", UNREAD_LIST, True, False, False),
    ("level unknown", PUBLIC, True, False, False),
    ("contact, level unknown", PUBLIC, True, False, False),
    ("admin, level unknown", PUBLIC, True, False, False),
    ("admin, level unknown", PRIVATE, True, False, False),
]


@pytest.mark.parametrize(("role", "scope", "setting", "sees", "compiles"), MATRIX)
def test_matrix(
    role: str, scope: CommitmentScope, setting: bool, sees: bool, compiles: bool
) -> None:
    assert may_see_commitment(ROLES[role], scope) is sees
    assert may_compile_commitment(ROLES[role], scope, setting) is compiles


def test_project_level_compile_needs_one_compilable_commitment() -> None:
    contact = ROLES["invoice contact"]
    assert may_compile_on_project(contact, [PUBLIC, PRIVATE], True)
    assert not may_compile_on_project(contact, [PUBLIC, PRIVATE], False)
    assert not may_compile_on_project(contact, [PRIVATE], True)
    assert may_compile_on_project(ROLES["admin"], [], False)
    assert not may_compile_on_project(ROLES["standard"], [PUBLIC], True)
    assert not may_compile_on_project(contact, [UNREAD_LIST], True)
    assert not may_compile_on_project(ROLES["contact, level unknown"], [PUBLIC], True)
    assert not may_compile_on_project(ROLES["admin, level unknown"], [PUBLIC], False)


roles = st.builds(
    ProjectRole,
    user_id=st.one_of(st.none(), st.integers(1, 6)),
    email=st.one_of(st.none(), st.sampled_from(["a@x.example", "b@x.example"])),
    commitments_access=st.sampled_from(ACCESS_LEVELS),
    is_active=st.booleans(),
    access_known=st.booleans(),
)
scopes = st.builds(
    CommitmentScope,
    commitment_id=st.integers(1, 100),
    private=st.booleans(),
    private_list_ids=st.frozensets(st.integers(1, 6), max_size=3),
    private_list_emails=st.frozensets(st.sampled_from(["a@x.example", "b@x.example"])),
    invoice_contact_ids=st.frozensets(st.integers(1, 6), max_size=3),
    invoice_contact_emails=st.frozensets(st.sampled_from(["a@x.example", "b@x.example"])),
    private_list_known=st.booleans(),
)


@given(role=roles, scope=scopes, setting=st.booleans())
def test_compiling_implies_seeing_and_a_right_to_compile(
    role: ProjectRole, scope: CommitmentScope, setting: bool
) -> None:
    if may_compile_commitment(role, scope, setting):
        assert may_see_commitment(role, scope)
        assert role.is_admin or (setting and role.commitments_access != "admin")
    if scope.private and not role.is_admin and may_see_commitment(role, scope):
        listed = role.user_id in scope.private_list_ids or (
            role.email is not None and role.email.lower() in scope.private_list_emails
        )
        assert listed
    if not role.access_known or not scope.private_list_known:
        assert not may_see_commitment(role, scope)
        assert not may_compile_commitment(role, scope, setting)
