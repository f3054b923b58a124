"""Backups asked for and checked under a Slack fault storm (`tests.slack.fake_slack.FaultStorm`):
shared by tests/slack/test_slack_faults.py and bench/slack_faults.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs

from storage.jobs import Job, JobStatus
from storage.slack_deliveries import delivery_of
from tests.slack.fake_slack import FakeSlack, FaultStorm
from tests.slack.slack_driver import SlackDriver, invoice_options

# The demo project's invoices, one backup of one or two of them each (commands.demo).
SELECTIONS = ([9001], [9002, 9011], [9012], [9021], [9003, 9022], [9011])
# A call that reaches the fake this soon after a 429 of its method was sent before the bot got
# the 429 (the bot, the fake and the test share one event loop, so "this soon" is generous).
IN_FLIGHT = 0.5
USER_TRIES = 10  # how often a user sends the same form again when Slack shows an error


async def ask_for_backup(
    slack: SlackDriver, fake: FakeSlack, user_id: str, project_id: int, invoice_ids: list[int]
) -> None:
    """A user's whole journey (command → modal → options → Compile), whatever the faults: the
    modal is the first view opened for the command's trigger (a retried views.open may open a
    second); journeys may run side by side.
    The bot must answer within Slack's 3 seconds, and its own Slack calls may make it miss
    them (Slack then shows an error): the user tries again, as they would (a submission of the
    same view queues one job however often it is sent)."""
    body = slack.command_body(user_id)
    [trigger] = parse_qs(body)["trigger_id"]
    answer = await slack.send(body)
    assert answer.status == 200, answer
    opened = await fake.wait_for(
        lambda: [view.id for view in fake.views.values() if view.trigger_id == trigger], 60
    )
    view = slack.current_view(opened[0])
    for _ in range(USER_TRIES):
        options = await slack.load_options(user_id, view, project_id)
        if options.status == 200:
            break
    assert options.status == 200, options
    offered = invoice_options(options)
    for _ in range(USER_TRIES):
        answer = await slack.submit(user_id, view, project_id, [offered[i] for i in invoice_ids])
        if answer.status == 200 and answer.text == "":
            return
    raise AssertionError(f"the submission failed {USER_TRIES} times: {answer}")


async def delivery_problems(fake: FakeSlack, jobs: list[Job]) -> list[str]:
    """What is wrong with the delivery of ``jobs`` (empty when every backup ended with exactly
    one parent message, one file in its thread and one final reply, said done, and nothing else
    was posted or shared)."""
    problems: list[str] = []
    parents = {(m.channel, m.ts): m for m in fake.top_level_messages()}
    recorded: set[tuple[str | None, str | None]] = set()
    for job in jobs:
        if job.status != JobStatus.SUCCEEDED:
            problems.append(f"job {job.id} {job.status}: {job.error}")
            continue
        steps = await delivery_of(job)
        recorded.add((steps.parent_channel, steps.parent_ts))
        parent = parents.get((str(steps.parent_channel), str(steps.parent_ts)))
        if parent is None:
            problems.append(f"job {job.id}: its parent message is not in Slack")
            continue
        files = fake.files_in_thread(parent.channel, parent.ts)
        if [upload.file_id for upload in files] != [steps.file_id]:
            problems.append(f"job {job.id}: files in the thread {[u.file_id for u in files]}")
        replies = fake.replies(parent.channel, parent.ts)
        if [reply.ts for reply in replies] != [steps.final_reply_ts]:
            problems.append(f"job {job.id}: {len(replies)} replies in the thread")
        if ": done" not in parent.text:  # "Invoice backup of … : done, the PDF is in the thread"
            problems.append(f"job {job.id}: the parent message ends as {parent.text[:80]!r}")
    extra = set(parents) - recorded
    if extra:
        problems.append(f"{len(extra)} parent messages belong to no job (posted twice)")
    shares = sum(len(upload.shares) for upload in fake.uploads.values())
    if shares != len(jobs):
        problems.append(f"{shares} files shared for {len(jobs)} backups")
    keys = Counter(
        str((message.metadata or {}).get("event_payload", {}).get("key"))
        for message in fake.messages
    )
    problems += [f"{key} posted {count} times" for key, count in keys.items() if count > 1]
    return problems


@dataclass(frozen=True)
class RetryAfterReport:
    """How the 429s' Retry-After was honoured: ``again`` the gaps (method, seconds) until the
    same request came again, ``method_wide`` until any call of that method came."""

    rate_limited: int
    retry_after: int
    again: list[tuple[str, float]]
    method_wide: list[tuple[str, float]]

    @property
    def too_soon(self) -> list[tuple[str, float]]:
        """Requests sent again before their Retry-After was over (not counting those that
        arrived within `IN_FLIGHT` of the 429: sent before the bot could have read it)."""
        return [(m, gap) for m, gap in self.again if IN_FLIGHT <= gap < self.retry_after]

    @property
    def method_too_soon(self) -> list[tuple[str, float]]:
        """Calls of a rate-limited method sent before its Retry-After was over (the same
        allowance for calls in flight)."""
        return [(m, gap) for m, gap in self.method_wide if IN_FLIGHT <= gap < self.retry_after]

    @property
    def in_flight(self) -> int:
        """Calls of a rate-limited method that arrived within `IN_FLIGHT` of its 429."""
        return sum(1 for _, gap in self.method_wide if gap < IN_FLIGHT)


def retry_after_report(storm: FaultStorm) -> RetryAfterReport:
    """The storm's 429s and the gaps after them."""
    again, method_wide = storm.retry_after_gaps()
    rate_limited = sum(1 for fault in storm.faults if fault.kind == "429")
    return RetryAfterReport(rate_limited, storm.retry_after, again, method_wide)
