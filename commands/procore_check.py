"""``procore check``: what a Procore admin runs first. Does the token work, which projects can the
service account reach, and which tool permissions does it lack (per project, and the company
Directory's permission templates, without which every user's Commitments level is unknown)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from procore import api
from procore.client import ProcoreClient
from procore.errors import ProcoreError, ProcoreForbidden, ProjectNotReachable

# Tools the app reads on each project, and the least level it needs (Procore's tool names).
REQUIRED_TOOLS: dict[str, str] = {"commitments": "Commitments", "directory": "Directory"}
NO_ACCESS_LEVELS = frozenset({"none", "no access", ""})


@dataclass(frozen=True)
class ProjectCheck:
    """One listed project: reachable or not (``reason``), and the tools the account lacks."""

    project_id: int
    label: str
    reachable: bool
    missing_tools: tuple[str, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Reachable with every tool the app reads."""
        return self.reachable and not self.missing_tools

    def render(self) -> str:
        """One line."""
        if not self.reachable:
            return f"  {self.label}: NOT reachable: {self.reason}"
        if self.missing_tools:
            return (
                f"  {self.label}: reachable, but the service account lacks read access to "
                f"{', '.join(self.missing_tools)} (grant it in the app's permissions)"
            )
        return f"  {self.label}: reachable"


@dataclass(frozen=True)
class CheckReport:
    """The whole check (the token worked if there is a report at all)."""

    company_id: int
    templates_readable: bool
    projects: tuple[ProjectCheck, ...]

    @property
    def ok(self) -> bool:
        """True when nothing needs the Procore admin's attention."""
        return self.templates_readable and all(project.ok for project in self.projects)

    def render(self) -> str:
        """A few lines a Procore admin acts on."""
        lines = [
            f"Token: OK (company {self.company_id}).",
            "Company Directory permission templates: "
            + (
                "readable."
                if self.templates_readable
                else "NOT readable: grant the service account read access to the company "
                "Directory, or every user's Commitments level is unknown (they get none)."
            ),
            f"Projects the service account lists: {len(self.projects)}",
        ]
        lines += [project.render() for project in self.projects]
        if not self.projects:
            lines.append(
                "  none: add projects to the app's permitted projects (App Management → the app "
                "→ Permitted Projects)"
            )
        return "\n".join(lines)


def _missing_tools(permissions: dict[str, Any]) -> tuple[str, ...]:
    levels: dict[str, str] = {}
    for tool in permissions.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        level = tool.get("user_access_level")
        name = level.get("name") if isinstance(level, dict) else level
        levels[str(tool.get("name") or "").strip().lower()] = str(name or "").strip().lower()
    return tuple(
        label
        for key, label in REQUIRED_TOOLS.items()
        if levels.get(key, "").replace("_", " ") in NO_ACCESS_LEVELS
    )


async def check_procore(client: ProcoreClient) -> CheckReport:
    """Run the check. Raises `ProcoreAuthError` when the token does not work and `ProcoreError`
    when the projects list cannot be read."""
    listed = [entry for entry in await api.list_projects(client) if isinstance(entry, dict)]
    try:
        await api.list_permission_templates(client)
        templates_readable = True
    except ProcoreForbidden:
        templates_readable = False
    projects: list[ProjectCheck] = []
    for entry in listed:
        project_id = entry.get("id")
        if not isinstance(project_id, int):
            continue
        number = str(entry.get("project_number") or "")
        label = f"{entry.get('name') or project_id}" + (f" ({number})" if number else "")
        try:
            permissions = await api.my_permissions(client, project_id)
        except ProjectNotReachable as error:
            projects.append(ProjectCheck(project_id, label, False, reason=error.reason))
            continue
        except ProcoreError as error:
            projects.append(
                ProjectCheck(project_id, label, False, reason=" ".join(str(error).split()))
            )
            continue
        projects.append(ProjectCheck(project_id, label, True, _missing_tools(permissions)))
    return CheckReport(client.company_id, templates_readable, tuple(projects))
