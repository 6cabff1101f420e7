"""Telegram entities: spans counted in UTF-16 code units, read as spans of Python text.

Telegram measures an entity's ``offset`` and ``length`` in UTF-16 code units, so a
character outside the Basic Multilingual Plane (most emoji, rare CJK ideographs) counts
twice, while Python indexes code points. Ingress converts every span once, here, so the
``entities`` of a message count characters of ``text`` as Python slices it, and each
carries the text it marks. A span that is not one of the text (past its end, negative,
or cutting a surrogate pair in half) is no entity Telegram sends: the record is refused.
"""

from __future__ import annotations

from typing import Any

from awooop.ingress.domain.json_fields import is_int
from awooop.ingress.domain.messages import InboundRefused

MAX_COMMAND = 64
"""Longer names are no command: Telegram's bot commands have at most 32 characters."""


def utf16_units(char: str) -> int:
    """How many UTF-16 code units one character takes: 2 beyond U+FFFF, else 1."""
    return 2 if ord(char) > 0xFFFF else 1


class Utf16Index:
    """Where each UTF-16 offset of `text` falls in Python's indexing of it."""

    def __init__(self, text: str) -> None:
        self._positions: dict[int, int] = {}
        units = 0
        for index, char in enumerate(text):
            self._positions[units] = index
            units += utf16_units(char)
        self._positions[units] = len(text)
        self.units = units
        """The length of the text in UTF-16 code units."""

    def span(self, offset: int, length: int) -> tuple[int, int] | None:
        """The Python ``(start, end)`` of the UTF-16 span; ``None`` when it is not a span
        of the text (outside it, or starting or ending inside a surrogate pair)."""
        start = self._positions.get(offset)
        end = self._positions.get(offset + length)
        if start is None or end is None or length < 0:
            return None
        return start, end


def telegram_entities(text: str, raw: object, where: str) -> tuple[dict[str, Any], ...]:
    """The entities of `text` with Python offsets and their own text; `raw` is Telegram's
    ``entities`` (or ``caption_entities``) array, `where` names it in a refusal.

    Only ``type``, ``offset`` and ``length`` are kept (a link's ``url``, a mention's
    ``user`` and the like are left out); the payload's validation refuses empty spans.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InboundRefused(f"{where} is not an array")
    index = Utf16Index(text)
    entities = []
    for number, entity in enumerate(raw):
        fields = entity if isinstance(entity, dict) else {}
        kind, offset, length = fields.get("type"), fields.get("offset"), fields.get("length")
        if not (isinstance(kind, str) and is_int(offset) and is_int(length)):
            raise InboundRefused(
                f"{where}[{number}] has no string type, integer offset and integer length"
            )
        span = index.span(offset, length)
        if span is None:
            raise InboundRefused(
                f"{where}[{number}] (offset {offset}, length {length}) is no span of the "
                f"text's {index.units} UTF-16 code units"
            )
        start, end = span
        entities.append(
            {"type": kind, "offset": start, "length": end - start, "text": text[start:end]}
        )
    return tuple(entities)


def bot_command(entities: tuple[dict[str, Any], ...]) -> str | None:
    """The name of the bot command the text starts with: a ``bot_command`` entity at
    offset 0, without its ``/`` and its ``@bot`` suffix (``/start@demo_bot`` → ``start``).

    The suffix is not compared with the bot's username: ingress knows its bot by id, and
    Telegram already keeps commands addressed to other bots from a bot in privacy mode.
    """
    for entity in entities:
        if entity["type"] == "bot_command" and entity["offset"] == 0:
            name = entity["text"].removeprefix("/").partition("@")[0]
            return name if 0 < len(name) <= MAX_COMMAND else None
    return None
