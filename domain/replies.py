"""Reply values: what a handler or a service answers with. The transport layer (``bot``) decides how each is sent.

A handler returns one of these (or a plain ``str``, taken as ``Text``) or passes them to ``ctx.reply``. Keeping them
plain values lets handler tests assert on what was answered without any DingTalk machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_BUTTONS = 5  # DingTalk's sampleActionCard2..5 carry at most five buttons


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    at_user_ids: tuple[str, ...] = ()  # only honoured on the session webhook: OpenAPI sends cannot @ anyone


@dataclass(frozen=True, slots=True)
class Markdown:
    title: str  # shown in the chat list and notifications
    text: str
    at_user_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Button:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class ActionCard:
    title: str
    text: str  # markdown
    buttons: tuple[Button, ...] = ()
    horizontal: bool = False

    def __post_init__(self) -> None:
        if not self.buttons:
            raise ValueError("an ActionCard needs at least one button")
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"an ActionCard carries at most {MAX_BUTTONS} buttons")


@dataclass(frozen=True, slots=True)
class Image:
    """A PNG to upload, or a media id already uploaded."""

    png: bytes | None = field(default=None, repr=False)
    media_id: str | None = None

    def __post_init__(self) -> None:
        if (self.png is None) == (self.media_id is None):
            raise ValueError("an Image needs exactly one of png or media_id")


@dataclass(frozen=True, slots=True)
class File:
    """A file to upload and send (.docx, .xlsx, .pdf, .zip ...), from disk or from memory."""

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("a File needs exactly one of path or data")

    @property
    def file_type(self) -> str:
        """DingTalk's ``fileType``: the extension without the dot."""
        return Path(self.name).suffix.lstrip(".").lower()


Reply = Text | Markdown | ActionCard | Image | File
REPLY_TYPES = (Text, Markdown, ActionCard, Image, File)


def as_reply(value: Reply | str) -> Reply:
    """A handler may answer with a plain string; anything else must already be a reply value."""
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, REPLY_TYPES):
        return value
    raise TypeError(f"a handler returned {type(value).__name__}, expected a reply value or str")
