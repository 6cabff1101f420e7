"""Outcome events: one per call, on its own stream, answering the request that caused it."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from mcp.types import CallToolResult, ImageContent, TextContent

from awooop.contracts.events.payloads.gateway import (
    ToolCallBlocked,
    ToolCallFailed,
    ToolCallSucceeded,
)
from awooop.contracts.events.payloads.run import ToolCallRequested
from awooop.contracts.families.tool import Tool
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.mcp_gateway.adapters.mcp_sessions import server_parameters, tool_answer
from awooop.mcp_gateway.domain.calls import blocked, failed, requested_call, succeeded
from awooop.mcp_gateway.domain.gates import GateRefusal
from awooop.mcp_gateway.domain.results import ToolAnswer
from awooop.security.canonical_json import canonical_sha256
from support.contracts import status_tool_body

pytestmark = pytest.mark.unit

AT = dt.datetime(2025, 5, 1, 9, 0, tzinfo=dt.UTC)
REF = "status-demo@1:0123456789ab"


def _request() -> Envelope[ToolCallRequested]:
    return new_envelope(
        ToolCallRequested(
            call_id="call-7",
            tool="status__demo",
            arguments={"service": "checkout"},
            execute_before=AT + dt.timedelta(minutes=1),
            revisions=("demo-agent@1:0123456789ab",),
        ),
        occurred_at=AT,
        project_id="acme",
        stream_type="run",
        stream_id="run-42",
        stream_seq=3,
        trace_id=new_trace_id(),
        correlation_id="run-42",
        actor="service:runtime",
        producer="runtime",
    )


def test_the_request_names_the_call_the_run_and_the_cause() -> None:
    request = _request()
    call = requested_call(request)
    assert call.call_id == "call-7"
    assert call.run_id == "run-42"
    assert call.project_id == "acme"
    assert call.tool == "status__demo"
    assert call.arguments == {"service": "checkout"}
    assert call.trace_id == request.trace_id
    assert call.request_event_id == request.event_id


@pytest.mark.parametrize("kind", ["blocked", "succeeded", "failed"])
def test_every_outcome_is_the_first_event_of_the_call_stream(kind: str) -> None:
    request = _request()
    call = requested_call(request)
    builders: dict[str, Callable[[], Envelope[Any]]] = {
        "blocked": lambda: blocked(call, GateRefusal(1, "E-MCP-GATE-001", "x"), AT),
        "succeeded": lambda: succeeded(call, {"ok": True}, REF, AT),
        "failed": lambda: failed(call, "E-MCP-CALL-FAILED", "boom", AT),
    }
    envelope = builders[kind]()
    assert envelope.event_type == f"gateway.tool_call_{kind}"
    assert (envelope.stream_type, envelope.stream_id, envelope.stream_seq) == (
        "tool_call",
        "call-7",
        1,
    )
    assert envelope.project_id == "acme"
    assert envelope.correlation_id == "run-42"
    assert envelope.causation_id == str(request.event_id)
    assert envelope.trace_id == request.trace_id
    assert (envelope.producer, envelope.actor) == ("mcp_gateway", "service:mcp_gateway")
    assert envelope.event_id != request.event_id


ARGUMENT_HASH = canonical_sha256({"service": "checkout"})
FACTS: dict[str, Any] = {
    "call_id": "call-7",
    "tool": "status__demo",
    "argument_hash": ARGUMENT_HASH,
    "arguments": {"service": "checkout"},
    "redactions": {},
}


def test_the_request_names_the_agent_revision_that_asked() -> None:
    assert requested_call(_request()).agent_ref == "demo-agent@1:0123456789ab"


def test_outcome_payloads_carry_the_call_facts_gate_code_result_and_revision() -> None:
    call = requested_call(_request())
    refusal = GateRefusal(4, "E-MCP-GATE-007", "limited", (REF,), retry_after=1.5)
    assert blocked(call, refusal, AT).payload == ToolCallBlocked(
        **FACTS, gate=4, code="E-MCP-GATE-007", reason="limited", revisions=(REF,), retry_after=1.5
    )
    assert succeeded(
        call, "text", REF, AT, result_redactions={"card": 2}, latency_ms=3.5
    ).payload == ToolCallSucceeded(
        **{**FACTS, "redactions": {"card": 2}}, result="text", revisions=(REF,), latency_ms=3.5
    )
    assert failed(call, "E-MCP-CALL-EXPIRED", "late", AT).payload == ToolCallFailed(
        **FACTS, code="E-MCP-CALL-EXPIRED", reason="late"
    )


def test_events_show_arguments_redacted_with_the_hash_of_what_was_asked() -> None:
    asked = {"service": "checkout", "password": "hunter2", "note": "mail ops@example.com"}
    call = replace(requested_call(_request()), arguments=asked)
    payload = failed(call, "E-MCP-CALL-FAILED", "boom", AT).payload
    assert payload.arguments == {
        "service": "checkout",
        "password": "[REDACTED:secret]",
        "note": "mail [REDACTED:email]",
    }
    assert payload.argument_hash == canonical_sha256(asked)
    assert payload.redactions == {"email": 1, "secret": 1}


def test_the_contract_command_runs_the_demo_server_with_this_interpreter() -> None:
    tool = Tool.model_validate(status_tool_body())
    params = server_parameters(tool)
    assert params.command == sys.executable
    assert params.args == ["-m", "awooop.mcp_gateway.demo_server"]


def test_an_sdk_result_keeps_structured_content_texts_and_error_flag() -> None:
    result = CallToolResult(
        content=[
            TextContent(type="text", text="hello"),
            ImageContent(type="image", data="aGk=", mime_type="image/png"),
        ],
        structured_content={"a": 1},
        is_error=False,
    )
    assert tool_answer(result) == ToolAnswer(
        structured={"a": 1}, texts=["hello", "[image content]"], is_error=False
    )
