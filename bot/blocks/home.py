"""The App Home tab: what the bot does and how to use it."""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.blocks.messages import COMMAND


def home_view() -> View:
    """A static Home tab explaining the command."""
    return View(
        type="home",
        blocks=[
            HeaderBlock(text="Invoice backups"),
            SectionBlock(
                text=MarkdownTextObject(
                    text="I compile *subcontractor invoice backups*: one PDF with each invoice "
                    "(or its signed copy), its PDF attachments, a cover page, bookmarks and "
                    "page numbers."
                )
            ),
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"Type `{COMMAND}` in any channel I'm in (or here), choose a project and "
                    f"invoices, and I post the PDF in a thread. `{COMMAND} help` says more."
                )
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Compiling needs Admin on the project's Commitments tool."
                    )
                ]
            ),
        ],
    )
