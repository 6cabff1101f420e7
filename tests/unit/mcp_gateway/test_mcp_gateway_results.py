"""Result shaping: structured content first, text otherwise, redacted, nothing over 16 KiB."""

from __future__ import annotations

import json

import pytest

from awooop.mcp_gateway.domain.results import (
    MAX_REASON_CHARS,
    MAX_RESULT_BYTES,
    CallError,
    CallResult,
    ToolAnswer,
    bound_reason,
    sensitive_values,
    shape_answer,
)
from awooop.security.redaction import truncation_marker

pytestmark = pytest.mark.unit

FAILED = "E-MCP-CALL-FAILED"
CARD = "4111 1111 1111 1111"


def test_structured_content_is_the_result() -> None:
    answer = ToolAnswer(
        structured={"service": "checkout", "status": "healthy", "checks": 3},
        texts=['{"service": "checkout"}'],
        is_error=False,
    )
    assert shape_answer(answer, FAILED) == CallResult(
        {"service": "checkout", "status": "healthy", "checks": 3}
    )


def test_without_structured_content_the_texts_are_joined() -> None:
    answer = ToolAnswer(structured=None, texts=["first", "second"], is_error=False)
    assert shape_answer(answer, FAILED) == CallResult("first\nsecond")


def test_secrets_in_a_result_are_redacted_and_counted() -> None:
    answer = ToolAnswer(
        structured={"owner": "ops@example.com", "card": CARD, "password": "hunter2"},
        texts=[],
        is_error=False,
    )
    shaped = shape_answer(answer, FAILED)
    assert shaped == CallResult(
        {"owner": "[REDACTED:email]", "card": "[REDACTED:card]", "password": "[REDACTED:secret]"},
        {"card": 1, "email": 1, "secret": 1},
    )


def test_a_tool_error_becomes_a_permanent_failure_with_its_redacted_text() -> None:
    answer = ToolAnswer(structured=None, texts=[f"card {CARD} declined"], is_error=True)
    assert shape_answer(answer, FAILED) == CallError(
        FAILED, "card [REDACTED:card] declined", transient=False
    )


def test_a_tool_error_without_text_still_says_something() -> None:
    shaped = shape_answer(ToolAnswer(structured=None, texts=[], is_error=True), FAILED)
    assert isinstance(shaped, CallError)
    assert shaped.reason


def test_a_large_structured_result_becomes_a_marked_string_within_the_limit() -> None:
    big = {"rows": ["x" * 100 for _ in range(400)]}
    shaped = shape_answer(ToolAnswer(structured=big, texts=[], is_error=False), FAILED)
    assert isinstance(shaped, CallResult)
    assert isinstance(shaped.result, str)
    assert len(shaped.result.encode()) <= MAX_RESULT_BYTES
    encoded = json.dumps(big, separators=(",", ":"))
    assert shaped.result.startswith(encoded[:1000])
    assert "…[truncated " in shaped.result
    assert shaped.redactions == {"truncated": 1}


def test_a_structured_result_at_the_limit_stays_whole() -> None:
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    fits = {"k": "a" * (MAX_RESULT_BYTES - overhead)}
    shaped = shape_answer(ToolAnswer(structured=fits, texts=[], is_error=False), FAILED)
    assert shaped == CallResult(fits)


def test_a_large_text_result_is_truncated_and_marked() -> None:
    text = "é" * MAX_RESULT_BYTES
    shaped = shape_answer(ToolAnswer(structured=None, texts=[text], is_error=False), FAILED)
    assert isinstance(shaped, CallResult)
    assert isinstance(shaped.result, str)
    assert len(shaped.result.encode()) <= MAX_RESULT_BYTES
    dropped = len(text.encode()) - len(shaped.result.removesuffix(truncation_marker(0)).encode())
    assert shaped.result.endswith("bytes]")
    assert dropped > 0


def test_failure_reasons_fit_the_event_field_redacted() -> None:
    assert bound_reason("short") == "short"
    long = bound_reason("x" * 10_000)
    assert len(long.encode()) <= MAX_REASON_CHARS
    assert "…[truncated " in long
    assert bound_reason(f"refused {CARD}") == "refused [REDACTED:card]"


def test_a_value_the_arguments_hid_by_its_key_is_blotted_where_the_tool_repeats_it() -> None:
    hidden = sensitive_values({"user": "ops", "password": "hunter2-xyz", "opts": {"token": 1234}})
    assert hidden == ("hunter2-xyz", "1234")
    words = ToolAnswer(structured=None, texts=["login failed: hunter2-xyz"], is_error=False)
    assert shape_answer(words, FAILED, hidden) == CallResult(
        "login failed: [REDACTED:secret]", {"secret": 1}
    )
    nested = ToolAnswer(
        structured={"echo": {"pin": 1234, "note": "x hunter2-xyz"}}, texts=[], is_error=False
    )
    shaped = shape_answer(nested, FAILED, hidden)
    assert shaped == CallResult(
        {"echo": {"pin": "[REDACTED:secret]", "note": "x [REDACTED:secret]"}}, {"secret": 2}
    )
    refused = ToolAnswer(structured=None, texts=["bad password hunter2-xyz"], is_error=True)
    failed = shape_answer(refused, FAILED, hidden)
    assert isinstance(failed, CallError)
    assert "hunter2-xyz" not in failed.reason
    assert bound_reason("echo hunter2-xyz", hidden) == "echo [REDACTED:secret]"
