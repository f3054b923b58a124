"""``invoice-backups procore webhooks install|status|remove``: the Procore hooks pointing at the
bot (`commands.procore_webhooks`). Needs the PROCORE_* settings; ``install`` also needs
PROCORE_WEBHOOK_SECRET (the ``Authorization`` value Procore will send). The secret is never
printed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.settings import SettingsError, webhook_secret_from_env
from procore import ProcoreError

if TYPE_CHECKING:
    from procore import ProcoreClient


class WebhooksCliError(Exception):
    """A user-facing failure of a webhooks subcommand (one line)."""


def add_webhooks_parser(procore_actions: Any) -> None:
    """Add ``webhooks install|status|remove`` under the ``procore`` subcommand's actions."""
    webhooks = procore_actions.add_parser(
        "webhooks", help="the Procore webhooks that keep the bot current within seconds"
    )
    steps = webhooks.add_subparsers(dest="webhooks_action", required=True)
    install = steps.add_parser("install", help="create or update the hook and its triggers")
    install.add_argument(
        "--url", required=True, help="the bot's public URL, https://HOST/procore/webhooks"
    )
    for step in (install, steps.add_parser("status", help="what is registered, last delivery")):
        step.add_argument(
            "--scope",
            choices=["company", "projects"],
            default="company",
            help="one hook for the company (default) or one per synced project",
        )
    remove = steps.add_parser("remove", help="delete the hooks (and their triggers)")
    remove.add_argument("--scope", choices=["company", "projects"], default="company")


async def run_webhooks(args: argparse.Namespace) -> int:
    from commands.procore_webhooks import (  # only this subcommand needs it
        delivery_health,
        hooks_status,
        install_hooks,
        remove_hooks,
    )

    """Run the ``procore webhooks`` action of ``args`` with ``args.procore``."""
    client: ProcoreClient | None = getattr(args, "procore", None)
    if client is None:
        raise SettingsError(
            "PROCORE_CLIENT_ID is not set: set PROCORE_CLIENT_ID, PROCORE_CLIENT_SECRET and "
            "PROCORE_COMPANY_ID (the Procore service account)"
        )
    secret = webhook_secret_from_env()
    try:
        if args.webhooks_action == "install":
            if secret is None:
                raise SettingsError(
                    "PROCORE_WEBHOOK_SECRET is not set: set it (e.g. openssl rand -hex 32) here "
                    "and in the bot's environment, then install again"
                )
            url = args.url
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.netloc:
                raise WebhooksCliError(f"--url must be https://HOST/procore/webhooks, got {url!r}")
            changes = await install_hooks(client, url, secret, scope=args.scope)
            for line in changes:
                print(line)
            if not changes:
                print("Already installed: nothing changed.")
        elif args.webhooks_action == "status":
            states = await hooks_status(client, secret, scope=args.scope)
            for state in states:
                where = "company" if state.project_id is None else f"project {state.project_id}"
                auth = "matches" if state.authorization_matches else "DOES NOT match"
                missing = f", {state.missing_triggers} missing" if state.missing_triggers else ""
                disabled = "" if state.active else " DISABLED by Procore (run install again);"
                print(
                    f"{where}: hook {state.hook_id} → {state.destination_url};{disabled} "
                    f"{state.triggers} trigger(s){missing}; Authorization {auth} "
                    "PROCORE_WEBHOOK_SECRET"
                )
            if not states:
                print("No hook registered (run: invoice-backups procore webhooks install).")
            print((await delivery_health()).render())
        else:
            removed = await remove_hooks(client, scope=args.scope)
            for line in removed:
                print(line)
            if not removed:
                print("No hook registered: nothing removed.")
    except ProcoreError as error:
        raise WebhooksCliError(f"Procore: {' '.join(str(error).split())}") from error
    return 0
