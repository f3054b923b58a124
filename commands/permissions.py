"""The permission rules of domain.md, as pure functions over plain data.

Who may see a commitment (and so its invoices) and who may compile a backup of its invoices.
`commands.access` loads the data and asks these functions; nothing else decides access.

Fail closed: a requester whose Commitments level the source could not determine
(``access_known=False``) sees and compiles nothing; a commitment whose private list could not
be read (``private_list_known=False``) is seen and compiled by nobody, admins included, until
it can be read.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCESS_LEVELS = ("none", "read_only", "standard", "admin")


@dataclass(frozen=True)
class ProjectRole:
    """A requester's standing on one project: their project user, if any matched."""

    user_id: int | None
    email: str | None
    commitments_access: str = "none"
    is_active: bool = True
    access_known: bool = True

    @property
    def is_admin(self) -> bool:
        """Admin on the project's Commitments tool (an active user whose level is known)."""
        return self.is_active and self.access_known and self.commitments_access == "admin"


NO_ROLE = ProjectRole(user_id=None, email=None)


@dataclass(frozen=True)
class CommitmentScope:
    """What the rules need to know about one commitment."""

    commitment_id: int
    private: bool
    private_list_ids: frozenset[int] = frozenset()
    private_list_emails: frozenset[str] = frozenset()
    invoice_contact_ids: frozenset[int] = frozenset()
    invoice_contact_emails: frozenset[str] = frozenset()
    private_list_known: bool = True


def _listed(role: ProjectRole, ids: frozenset[int], emails: frozenset[str]) -> bool:
    if role.user_id is not None and role.user_id in ids:
        return True
    return role.email is not None and role.email.lower() in emails


def is_invoice_contact(role: ProjectRole, scope: CommitmentScope) -> bool:
    """True when the requester is one of the commitment's invoice contacts."""
    return role.is_active and _listed(role, scope.invoice_contact_ids, scope.invoice_contact_emails)


def may_see_commitment(role: ProjectRole, scope: CommitmentScope) -> bool:
    """Admins see everything; a private commitment is seen only by its private list;
    a public one by read-only and standard users, and by its own invoice contacts. Nobody sees
    a commitment whose private list is unknown, and a requester whose level is unknown sees
    nothing."""
    if not role.is_active or not role.access_known or not scope.private_list_known:
        return False
    if role.is_admin:
        return True
    if scope.private:
        return _listed(role, scope.private_list_ids, scope.private_list_emails)
    return role.commitments_access in ("read_only", "standard") or is_invoice_contact(role, scope)


def may_compile_commitment(
    role: ProjectRole, scope: CommitmentScope, invoice_contacts_may_compile: bool
) -> bool:
    """Admins compile any invoice; invoice contacts compile their own commitments' invoices
    only where the project's setting allows it (and only what they may see). Nobody compiles a
    commitment whose private list is unknown."""
    if not scope.private_list_known:
        return False
    if role.is_admin:
        return True
    return (
        invoice_contacts_may_compile
        and is_invoice_contact(role, scope)
        and may_see_commitment(role, scope)
    )


def may_compile_on_project(
    role: ProjectRole, scopes: list[CommitmentScope], invoice_contacts_may_compile: bool
) -> bool:
    """True when there is at least one commitment whose invoices the requester may compile."""
    if role.is_admin:
        return True
    return any(
        may_compile_commitment(role, scope, invoice_contacts_may_compile) for scope in scopes
    )


def access_rank(role: ProjectRole) -> int:
    """The role's Commitments level as a rank (none 0 … admin 3); an inactive user ranks 0."""
    if not role.is_active or role.commitments_access not in ACCESS_LEVELS:
        return 0
    return ACCESS_LEVELS.index(role.commitments_access)
