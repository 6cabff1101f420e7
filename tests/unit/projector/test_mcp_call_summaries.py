"""The timeline's words on a tool call: given the gateway's events, then one short line each
saying what happened and why (a gate, a code, the redacted reason, a retry delay, what a
shadow call would need, transient or permanent, latency, the kinds of values redacted),
never an argument's or a result's value."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from awooop.projector.domain.gateway_summaries import REASON_CHARS, redaction_note
from awooop.projector.domain.read_models import fold_batch
from support.mcp_call_envelopes import Event, McpCallTraffic

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"
INVALID = "arguments invalid: /service: 3 is not of type 'string'"


def _line(event: Event) -> dict[str, Any]:
    [line] = [t for t in fold_batch([event]).timeline if t.event_id == event.event_id]
    return line.summary


@pytest.fixture
def t() -> McpCallTraffic:
    return McpCallTraffic("acme", AT)


def test_a_refusal_names_the_gate_the_code_and_why(t: McpCallTraffic) -> None:
    call = t.requested("status__demo", {"service": 3})
    line = _line(t.blocked(call, gate=3, code="E-MCP-GATE-004", reason=INVALID))
    assert line["text"] == (
        "tool status__demo refused at gate 3 (E-MCP-GATE-004): "
        "arguments invalid: /service: 3 is not of type 'string'"
    )
    assert (line["gate"], line["code"], line["call_id"]) == (
        3,
        "E-MCP-GATE-004",
        call.payload.call_id,
    )


def test_a_rate_limit_says_when_to_retry(t: McpCallTraffic) -> None:
    call = t.requested("status__demo", {"service": "db"})
    refused = t.blocked(call, gate=4, code="E-MCP-GATE-007", reason="rate limited", retry_after=1.5)
    line = _line(refused)
    assert line["text"] == (
        "tool status__demo refused at gate 4 (E-MCP-GATE-007): rate limited; retry after 1.5 s"
    )
    assert line["retry_after"] == 1.5


def test_a_shadow_refusal_says_what_it_would_need(t: McpCallTraffic) -> None:
    call = t.requested("restart__demo", {"service": "db"})
    refused = t.blocked(
        call, gate=3, code="E-MCP-GATE-005", reason="write in shadow", would_need="approval"
    )
    assert _line(refused)["text"].endswith(
        "(E-MCP-GATE-005): write in shadow; would need approval in suggest or active mode"
    )


@pytest.mark.parametrize(
    ("transient", "said"),
    [
        (True, "E-MCP-CALL-FAILED, transient"),
        (False, "E-MCP-CALL-FAILED, permanent"),
        (None, "E-MCP-CALL-FAILED"),
    ],
)
def test_a_failure_says_transient_or_permanent_and_why(
    t: McpCallTraffic, transient: bool | None, said: str
) -> None:
    call = t.requested("status__demo", {"service": "queue"})
    failed = t.failed(
        call, code="E-MCP-CALL-FAILED", reason="ConnectionRefusedError", transient=transient
    )
    line = _line(failed)
    assert line["text"] == f"tool status__demo failed ({said}): ConnectionRefusedError"
    assert line["transient"] is transient
    timed = t.failed(
        call, code="E-MCP-CALL-EXPIRED", reason="deadline passed", transient=True, latency_ms=30000
    )
    assert _line(timed)["text"] == (
        "tool status__demo failed after 30000 ms (E-MCP-CALL-EXPIRED, transient): deadline passed"
    )


def test_a_success_gives_its_latency_and_what_was_redacted_never_a_value(
    t: McpCallTraffic,
) -> None:
    call = t.requested("status__demo", {"service": "checkout", "notify": EMAIL, "card": CARD})
    done = t.succeeded(call, result={"status": "green", "owner": EMAIL}, latency_ms=42.25)
    assert done.payload.redactions == {"email": 1, "card": 1}
    line = _line(done)
    assert line["text"] == "tool status__demo succeeded in 42 ms; 2 values redacted: card, email"
    assert (line["latency_ms"], line["redactions"]) == (42.25, {"email": 1, "card": 1})
    dumped = json.dumps(line)
    for value in (EMAIL, CARD, "checkout", "green", "[REDACTED"):
        assert value not in dumped
    quick = t.succeeded(call, result="ok", latency_ms=0.5, redactions={})
    assert _line(quick)["text"] == "tool status__demo succeeded in 0.5 ms"


def test_an_approval_says_the_scope_the_mode_and_why(t: McpCallTraffic) -> None:
    call = t.requested("restart__demo", {"service": "cache"})
    asked = t.approval_required(
        call, scope="write", mode="suggest", reason="the policy asks approval of write tools"
    )
    assert _line(asked)["text"] == (
        "tool restart__demo needs an approval (write scope, suggest mode): "
        "the policy asks approval of write tools"
    )
    bare = t.approval_required(call, scope=None, mode=None)
    assert _line(bare)["text"] == "tool restart__demo needs an approval"


def test_a_reason_is_redacted_and_cut_short(t: McpCallTraffic) -> None:
    call = t.requested("status__demo", {"service": "queue"})
    long = f"server said: mail {EMAIL} " + "x" * 500
    line = _line(t.failed(call, code="E-MCP-CALL-FAILED", reason=long, transient=False))
    assert EMAIL not in line["text"]
    assert "[REDACTED:email]" in line["text"]
    reason = line["text"].split(": ", 1)[1]
    assert len(reason) == REASON_CHARS
    assert reason.endswith("…")


def test_an_event_that_names_no_tool_still_reads(t: McpCallTraffic) -> None:
    call = t.requested("status__demo", {"service": "db"})
    done = t.succeeded(call, result="ok", tool="", latency_ms=3.0, redactions={"email": 3})
    assert _line(done)["text"] == "tool call succeeded in 3.0 ms; 3 values redacted: email"


def test_the_redaction_note_counts_values_of_each_kind() -> None:
    assert redaction_note({}) == ""
    assert redaction_note({"email": 1}) == "1 value redacted: email"
    assert redaction_note({"phone": 2, "card": 1}) == "3 values redacted: card, phone"
