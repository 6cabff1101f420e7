"""Telegram entity spans: UTF-16 code units in, Python string indices and texts out."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.ingress.domain import InboundRefused
from awooop.ingress.domain.entities import Utf16Index, bot_command, telegram_entities, utf16_units

pytestmark = pytest.mark.unit

WHERE = "telegram message.entities"


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_characters_beyond_the_basic_plane_count_two_units() -> None:
    assert [utf16_units(char) for char in "aЖ中€👋𠜎"] == [1, 1, 1, 1, 2, 2]
    index = Utf16Index("a👋b")
    assert index.units == 4
    assert index.span(0, 1) == (0, 1)
    assert index.span(1, 2) == (1, 2)
    assert index.span(3, 1) == (2, 3)
    assert index.span(0, 4) == (0, 3)


@pytest.mark.parametrize(("offset", "length"), [(2, 1), (1, 1), (0, 5), (5, 0), (-1, 1), (1, -1)])
def test_a_span_outside_the_text_or_inside_a_surrogate_pair_is_none(
    offset: int, length: int
) -> None:
    assert Utf16Index("a👋b").span(offset, length) is None


def test_an_empty_text_has_only_the_empty_span() -> None:
    index = Utf16Index("")
    assert (index.units, index.span(0, 0), index.span(0, 1)) == (0, (0, 0), None)


def test_entities_after_emoji_and_flags_are_shifted_back_and_carry_their_text() -> None:
    text = "🇫🇷 👨‍👩‍👧 /deploy@demo_bot prod *now* 𠜎x"
    raw = [
        {"type": "bot_command", "offset": 14, "length": 16},
        {"type": "bold", "offset": 36, "length": 5},
        {"type": "italic", "offset": 42, "length": 3, "url": "ignored"},
    ]
    assert telegram_entities(text, raw, WHERE) == (
        {"type": "bot_command", "offset": 9, "length": 16, "text": "/deploy@demo_bot"},
        {"type": "bold", "offset": 31, "length": 5, "text": "*now*"},
        {"type": "italic", "offset": 37, "length": 2, "text": "𠜎x"},
    )


def test_no_entities_is_an_empty_tuple() -> None:
    assert telegram_entities("hi", None, WHERE) == ()
    assert telegram_entities("hi", [], WHERE) == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"type": "bold"}, "telegram message.entities is not an array"),
        (
            ["bold"],
            "telegram message.entities[0] has no string type, integer offset and integer length",
        ),
        (
            [{"type": "bold", "offset": "0", "length": 1}],
            "telegram message.entities[0] has no string type, integer offset and integer length",
        ),
        (
            [{"type": "bold", "offset": 0, "length": True}],
            "telegram message.entities[0] has no string type, integer offset and integer length",
        ),
        (
            [{"offset": 0, "length": 1}],
            "telegram message.entities[0] has no string type, integer offset and integer length",
        ),
        (
            [
                {"type": "bold", "offset": 0, "length": 1},
                {"type": "bold", "offset": 2, "length": 1},
            ],
            "telegram message.entities[1] (offset 2, length 1)"
            " is no span of the text's 4 UTF-16 code units",
        ),
        (
            [{"type": "bold", "offset": 3, "length": 2}],
            "telegram message.entities[0] (offset 3, length 2)"
            " is no span of the text's 4 UTF-16 code units",
        ),
    ],
)
def test_ill_formed_entities_are_refused_by_position(raw: Any, reason: str) -> None:
    with pytest.raises(InboundRefused) as caught:
        telegram_entities("a👋b", raw, WHERE)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("text", "offset", "length", "command"),
    [
        ("/start@demo_bot", 0, 15, "start"),
        ("/help me", 0, 5, "help"),
        ("/status@demo_bot@x", 0, 18, "status"),
        ("say /start", 4, 6, None),
        ("/@demo_bot", 0, 10, None),
        ("/" + "a" * 65, 0, 66, None),
        ("/" + "a" * 64, 0, 65, "a" * 64),
    ],
)
def test_the_command_is_a_bot_command_at_offset_zero_without_slash_or_bot(
    text: str, offset: int, length: int, command: str | None
) -> None:
    raw = [{"type": "bot_command", "offset": offset, "length": length}]
    assert bot_command(telegram_entities(text, raw, WHERE)) == command


def test_an_entity_of_another_type_at_offset_zero_is_no_command() -> None:
    raw = [{"type": "bold", "offset": 0, "length": 6}]
    assert bot_command(telegram_entities("/start", raw, WHERE)) is None


@given(
    before=st.text(max_size=20),
    marked=st.text(min_size=1, max_size=20),
    after=st.text(max_size=20),
)
def test_any_span_counted_in_utf16_is_found_as_the_same_text(
    before: str, marked: str, after: str
) -> None:
    text = before + marked + after
    raw = [{"type": "code", "offset": _utf16_length(before), "length": _utf16_length(marked)}]
    (entity,) = telegram_entities(text, raw, WHERE)
    assert entity == {"type": "code", "offset": len(before), "length": len(marked), "text": marked}
    assert text[entity["offset"] : entity["offset"] + entity["length"]] == marked
