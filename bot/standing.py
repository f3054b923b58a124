"""What the bot tells a Slack user about their standing, in their projects' words.

Asks the permission module (`commands.access`) and hands plain data to the pure builders:
why someone may not compile (per project, or "I don't know you" with how matching works),
and which tool names their messages should use (the project's dictionary).
"""

from __future__ import annotations

from bot.blocks.common import Message
from bot.blocks.messages import compile_refusal_message, unknown_user_message
from commands.access import Requester, project_access, projects_of
from storage.models import default_dictionary

MAX_REFUSALS_LISTED = 10


async def dictionary_of(requester: Requester) -> dict[str, str]:
    """The tool names of the requester's first project (by name); the defaults without one."""
    projects = await projects_of(requester)
    return projects[0].names() if projects else default_dictionary()


async def compile_refusal(requester: Requester, owners: frozenset[str]) -> Message:
    """Why the requester may compile on no project: each project's denial (permission, tool
    name, whom to ask), or, when no project user matches them, how matching works."""
    projects = await projects_of(requester)
    if not projects:
        return unknown_user_message(requester.email, sorted(owners))
    reasons = []
    for project in projects[:MAX_REFUSALS_LISTED]:
        reasons.append(str((await project_access(requester, project)).denial()))
    return compile_refusal_message(reasons)
