"""Result shaping: structured content first, text otherwise, nothing over 16 KiB."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.mcp_gateway.domain.results import (
    MAX_REASON_CHARS,
    MAX_RESULT_BYTES,
    CallError,
    CallResult,
    ToolAnswer,
    bound_reason,
    shape_answer,
    truncate_text,
)

pytestmark = pytest.mark.unit

FAILED = "E-MCP-CALL-FAILED"


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


def test_a_tool_error_becomes_a_failure_with_its_text() -> None:
    answer = ToolAnswer(structured=None, texts=["Unknown tool: nope"], is_error=True)
    assert shape_answer(answer, FAILED) == CallError(FAILED, "Unknown tool: nope")


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
    assert shaped.result.endswith(f"…[truncated: {len(encoded)} bytes]")


def test_a_structured_result_at_the_limit_stays_whole() -> None:
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    fits = {"k": "a" * (MAX_RESULT_BYTES - overhead)}
    shaped = shape_answer(ToolAnswer(structured=fits, texts=[], is_error=False), FAILED)
    assert shaped == CallResult(fits)


def test_a_large_text_result_is_truncated_and_marked() -> None:
    shaped = shape_answer(
        ToolAnswer(structured=None, texts=["é" * MAX_RESULT_BYTES], is_error=False), FAILED
    )
    assert isinstance(shaped, CallResult)
    assert isinstance(shaped.result, str)
    assert "truncated" in shaped.result
    assert len(shaped.result.encode()) <= MAX_RESULT_BYTES


@given(st.text(max_size=20_000), st.integers(min_value=64, max_value=MAX_RESULT_BYTES))
def test_truncation_never_passes_the_limit_and_keeps_a_prefix(text: str, limit: int) -> None:
    cut = truncate_text(text, limit)
    assert len(cut.encode()) <= limit
    if len(text.encode()) <= limit:
        assert cut == text
    else:
        kept = cut[: cut.rindex("…[truncated: ")]
        assert text.startswith(kept)


def test_failure_reasons_fit_the_event_field() -> None:
    assert bound_reason("short") == "short"
    long = bound_reason("x" * 10_000)
    assert len(long) == MAX_REASON_CHARS
    assert long.endswith("…[truncated]")
