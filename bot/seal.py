"""Binding a modal's ``private_metadata`` to the user it was opened for.

Slack hands ``private_metadata`` back with every submission and action, and anyone able to send a
signed request could send any value; so what the bot stores there is sealed: the builder's plain
metadata plus an HMAC-SHA256 over (purpose, Slack user id, metadata). A submission whose
metadata does not verify for the submitting user (edited, copied from another user's modal, or
not ours at all) is refused.

The key is derived (HMAC with a fixed label) from, in this order: the Slack signing secret (HTTP
mode always has one); else ``BACKUPS_SECRET`` (set it in Socket Mode so that rotating the bot
token does not invalidate open modals); else the bot token. Changing the secret only means modals
open at that moment must be opened again.
"""

from __future__ import annotations

import hashlib
import hmac
import json

KEY_LABEL = b"invoice-backups private_metadata v1"
SIGNATURE_HEX_CHARS = 32  # 128 bits of HMAC-SHA256


class TamperedMetadata(ValueError):
    """The metadata is not what the bot stored for this user (edited, foreign or garbled)."""


class MetadataSeal:
    """Seals and opens ``private_metadata`` strings with one derived key."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a metadata seal needs a non-empty secret")
        self._key = hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest()

    @classmethod
    def from_secrets(
        cls, signing_secret: str | None, backups_secret: str | None, bot_token: str
    ) -> MetadataSeal:
        """The seal from the first secret set (see the module docstring for the order)."""
        return cls(signing_secret or backups_secret or bot_token)

    def _signature(self, user_id: str, metadata: str) -> str:
        message = json.dumps([user_id, metadata]).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX_CHARS]

    def seal(self, metadata: str, user_id: str) -> str:
        """``metadata`` (a builder's plain string) bound to ``user_id``."""
        return json.dumps(
            {"m": metadata, "s": self._signature(user_id, metadata)}, separators=(",", ":")
        )

    def open(self, sealed: object, user_id: str) -> str:
        """The plain metadata, if ``sealed`` was sealed for ``user_id``; `TamperedMetadata`
        otherwise."""
        try:
            data = json.loads(sealed) if isinstance(sealed, str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TamperedMetadata("the form's metadata is not the bot's")
        metadata, signature = data.get("m"), data.get("s")
        if not isinstance(metadata, str) or not isinstance(signature, str):
            raise TamperedMetadata("the form's metadata is not the bot's")
        if not hmac.compare_digest(signature, self._signature(user_id, metadata)):
            raise TamperedMetadata("the form's metadata was not issued to this user")
        return metadata
