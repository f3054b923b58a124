"""The Slack bot: Bolt listeners, Block Kit builders, the job worker and the server.

How the pieces fit:
- `bot.server` runs everything in one event loop: the aiohttp app (``POST /slack/events`` through
  Bolt, ``GET /healthz``), Socket Mode when SLACK_APP_TOKEN is set, and `bot.worker.JobWorker`.
  `run_serve` is what ``invoice-backups serve`` calls.
- `bot.app` builds the `AsyncApp` and its `AsyncWebClient` (SLACK_API_URL, retry handlers).
- `bot.listeners` (commands, views, options, events) parse, authorise through `commands.access`,
  ack, and hand off: a valid modal submission becomes a job in `storage.jobs`, nothing more.
- `bot.worker` claims jobs of every kind registered in `bot.job_kinds` and runs each with its
  handler; `bot.slack_jobs` (compile_backup, digest) runs `commands.compile_backups.compile_backup`
  with the process pool of `bot.pool` and posts through `bot.delivery` / `bot.parent`, recording
  each step in the job's Slack delivery.
- `bot.blocks` holds the pure Block Kit builders; `bot.identity` maps Slack users to requesters.
"""
