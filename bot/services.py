"""What the listeners need besides the Bolt request: one object, built once by `bot.app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.identity import IdentityResolver
from bot.scheduler import ScheduleRegistry
from bot.seal import MetadataSeal
from procore import ProcoreClient


@dataclass(frozen=True)
class Services:
    """Shared collaborators of the listeners."""

    identities: IdentityResolver
    max_invoices: int
    wake_worker: Callable[[], None]
    seal: MetadataSeal  # binds each modal's private_metadata to the user it was opened for
    owners: frozenset[str] = frozenset()  # BACKUPS_OWNERS: manage access on every project
    schedules: ScheduleRegistry | None = None  # the digest scheduler: refresh after a change
    procore: ProcoreClient | None = None  # the Procore client, when the Procore settings are set
