"""The Block Kit pieces every builder uses: a `Message` (notification text + blocks) and the
mrkdwn `section` and `context` blocks. The one place they are defined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock


@dataclass(frozen=True)
class Message:
    """A message ready to send: ``text`` is the notification/fallback, ``blocks`` the layout."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, text: str, blocks: Sequence[Block]) -> Message:
        """A message of ``text`` and the Block Kit ``blocks`` (serialised)."""
        return cls(text=text, blocks=[block.to_dict() for block in blocks])

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond."""
        return {"text": self.text, "blocks": self.blocks}


def section(text: str) -> SectionBlock:
    """A section block of mrkdwn ``text`` (escape user text with `bot.blocks.text.escape`)."""
    return SectionBlock(text=MarkdownTextObject(text=text))


def context(text: str) -> ContextBlock:
    """A context block (small grey print) of mrkdwn ``text``."""
    return ContextBlock(elements=[MarkdownTextObject(text=text)])
