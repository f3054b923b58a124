"""Gathering what the Home tab shows one Slack user (`bot.blocks.home.HomeData`).

Projects and levels come from the permission module (`commands.access`), schedules from
`commands.digests`, backups from the user's own `Backup` rows, and each backup's thread from the
Slack delivery of the job that posted it (`storage.slack_deliveries`: ``parent_channel`` /
``parent_ts``, ``result["backup_id"]``).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.home import MAX_BACKUPS_LISTED, HomeBackup, HomeData, HomeProject
from commands.access import Requester, project_access, projects_of
from commands.digests import schedules_of
from commands.manage_access import is_owner
from commands.procore_webhooks import delivery_health
from pdf.formatting import format_period
from sources.snapshot import SOURCE_PROCORE
from storage.models import Backup, BillingPeriod, Invoice, Project
from storage.slack_deliveries import threads_of_results

log = logging.getLogger(__name__)

JOBS_SCANNED_FOR_THREADS = 500  # the newest jobs searched for the threads of the last backups


class WorkspaceUrl:
    """The workspace's URL (``https://acme.slack.com/``), from one auth.test per process."""

    def __init__(self) -> None:
        self._url: str | None = None

    async def get(self, client: AsyncWebClient) -> str | None:
        """The URL, asking Slack the first time (None, and asked again next time, on failure)."""
        if self._url is None:
            try:
                self._url = str((await client.auth_test()).get("url") or "") or None
            except SlackApiError as error:
                log.warning("auth.test failed, thread links will open the channel: %s", error)
        return self._url


def thread_url(workspace_url: str | None, channel: str, ts: str) -> str:
    """A link to the message ``ts`` in ``channel`` (the shape of Slack's permalinks), built
    from the workspace URL auth.test returns; without one, a link to the conversation."""
    if workspace_url:
        return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    return f"https://slack.com/app_redirect?channel={channel}"


async def _projects(requester: Requester) -> tuple[HomeProject, ...]:
    projects = []
    for project in await projects_of(requester):
        access = await project_access(requester, project)
        projects.append(
            HomeProject(
                label=str(project),
                level=access.role.commitments_access if access.role.is_active else "none",
                tool=access.tool_name(),
                is_admin=access.role.is_admin,
                may_compile=access.may_compile,
                synced_at=project.synced_at,
                source=project.source,
            )
        )
    return tuple(projects)


async def _unreachable(
    requester: Requester, owners: frozenset[str], projects: tuple[HomeProject, ...]
) -> tuple[tuple[str, str], ...]:
    """Projects the app cannot reach in Procore, with the reason: every one for an owner, the
    projects they administer for a project admin, none for others."""
    rows = await Project.filter(unreachable_reason__isnull=False).order_by("name")
    if not is_owner(requester, owners):
        administered = {project.label for project in projects if project.is_admin}
        rows = [row for row in rows if str(row) in administered]
    return tuple((str(row), str(row.unreachable_reason)) for row in rows)


async def _threads(backup_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Backup id → (channel, ts) of the parent message of the job that produced it."""
    threads: dict[int, tuple[str, str]] = {}
    for channel, ts, result in await threads_of_results(JOBS_SCANNED_FOR_THREADS):
        backup_id = result.get("backup_id")
        if backup_id in backup_ids and backup_id not in threads:
            threads[int(backup_id)] = (channel, ts)
    return threads


async def _contents(
    invoice_ids_of: list[list[int]],
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each backup's invoices: the billing periods they fall in (oldest first, as dates) and
    their vendors (by name), read in two queries for all backups."""
    wanted = {int(invoice_id) for ids in invoice_ids_of for invoice_id in ids}
    if not wanted:
        return [((), ()) for _ in invoice_ids_of]
    rows = await Invoice.filter(id__in=sorted(wanted)).values(
        "id", "period_id", "commitment__vendor_name"
    )
    by_id = {int(row["id"]): row for row in rows}
    period_ids = {int(row["period_id"]) for row in rows}
    periods = {
        period.id: period for period in await BillingPeriod.filter(id__in=sorted(period_ids))
    }
    contents = []
    for ids in invoice_ids_of:
        found = [by_id[int(i)] for i in ids if int(i) in by_id]
        mine = sorted(
            [periods[pid] for pid in {row["period_id"] for row in found} if pid in periods],
            key=lambda period: period.position,
        )
        vendors = dict.fromkeys(
            str(row["commitment__vendor_name"]) for row in found if row["commitment__vendor_name"]
        )
        contents.append(
            (
                tuple(format_period(period.start_date, period.end_date) for period in mine),
                tuple(vendors),
            )
        )
    return contents


async def _backups(requester: Requester, workspace_url: str | None) -> tuple[HomeBackup, ...]:
    rows = (
        await Backup.filter(requested_by=requester.key)
        .order_by("-requested_at", "-id")
        .limit(MAX_BACKUPS_LISTED)
        .prefetch_related("project")
    )
    threads = await _threads({row.id for row in rows}) if rows else {}
    contents = await _contents([list(row.invoice_ids or []) for row in rows])
    backups = []
    for row, (periods, vendors) in zip(rows, contents, strict=True):
        thread = threads.get(row.id)
        backups.append(
            HomeBackup(
                project_name=row.project.name,
                status=row.status,
                requested_at=row.requested_at,
                invoice_count=len(row.invoice_ids or []) - len(row.excluded or []),
                page_count=row.page_count,
                thread_url=thread_url(workspace_url, *thread) if thread else None,
                periods=periods,
                vendors=vendors,
            )
        )
    return tuple(backups)


async def home_of(
    requester: Requester, owners: frozenset[str], workspace_url: str | None
) -> HomeData:
    """The Home tab's data for ``requester``; admins and owners also see the Procore webhook
    line (`commands.procore_webhooks.delivery_health`) once a project comes from Procore."""
    projects = await _projects(requester)
    owner = is_owner(requester, owners)
    webhook_health = None
    if (owner or any(project.is_admin for project in projects)) and await Project.filter(
        source=SOURCE_PROCORE
    ).exists():
        webhook_health = (await delivery_health()).render()
    return HomeData(
        email=requester.email,
        projects=projects,
        unreachable=await _unreachable(requester, owners, projects),
        webhook_health=webhook_health,
        backups=await _backups(requester, workspace_url),
        schedules=tuple(await schedules_of(requester)),
        is_owner=owner,
        owner_ids=tuple(sorted(owners)),
    )
