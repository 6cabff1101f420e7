"""The gateway's revised events read their old shapes: the call facts they never carried
(tool, argument hash, shown arguments, redaction counts, latency) decode as unknown, and
a v2 refusal gets its code's own meaning as its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from awooop.contracts.events.payloads.gateway import (
    ApprovalRequired,
    ToolCallBlocked,
    ToolCallFailed,
    ToolCallSucceeded,
)
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_event_id, new_trace_id
from awooop.contracts.registries.errors import E_MCP_GATE_001

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()
HASH = "ab" * 32


def _record(event_type: str, version: int, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "event_id": str(new_event_id()),
            "event_type": event_type,
            "schema_version": version,
            "occurred_at": "2026-12-01T10:00:00+00:00",
            "project_id": "acme",
            "stream_type": "tool_call",
            "stream_id": "run-1:0",
            "stream_seq": 1,
            "trace_id": new_trace_id(),
            "correlation_id": "run-1",
            "causation_id": None,
            "actor": "service:mcp_gateway",
            "producer": "mcp_gateway",
            "payload": payload,
        }
    ).encode()


UNKNOWN_FACTS = {"tool": "", "argument_hash": "", "arguments": {}, "redactions": {}}


def _facts(payload: Any) -> dict[str, Any]:
    return {key: getattr(payload, key) for key in UNKNOWN_FACTS}


@pytest.mark.parametrize(
    ("version", "payload"),
    [
        (1, {"call_id": "run-1:0", "result": {"ok": True}, "revision": "status@1:abc"}),
        (2, {"call_id": "run-1:0", "result": {"ok": True}, "revisions": ["status@1:abc"]}),
    ],
)
def test_an_old_success_decodes_with_unknown_facts(version: int, payload: dict[str, Any]) -> None:
    decoded = CODEC.decode(_record("gateway.tool_call_succeeded", version, payload)).payload
    assert isinstance(decoded, ToolCallSucceeded)
    assert decoded.result == {"ok": True}
    assert decoded.revisions == ("status@1:abc",)
    assert _facts(decoded) == UNKNOWN_FACTS
    assert decoded.latency_ms is None


@pytest.mark.parametrize(
    ("version", "payload"),
    [
        (1, {"call_id": "run-1:0", "gate": 1, "code": "E-MCP-GATE-001", "revision": "x@1:a"}),
        (2, {"call_id": "run-1:0", "gate": 1, "code": "E-MCP-GATE-001", "revisions": []}),
    ],
)
def test_an_old_refusal_reads_its_codes_meaning_as_its_reason(
    version: int, payload: dict[str, Any]
) -> None:
    decoded = CODEC.decode(_record("gateway.tool_call_blocked", version, payload)).payload
    assert isinstance(decoded, ToolCallBlocked)
    assert decoded.reason == E_MCP_GATE_001.meaning
    assert (decoded.retry_after, decoded.would_need) == (None, None)
    assert _facts(decoded) == UNKNOWN_FACTS


def test_an_old_failure_decodes_with_transience_unknown() -> None:
    payload = {"call_id": "run-1:0", "code": "E-MCP-CALL-FAILED", "reason": "boom"}
    decoded = CODEC.decode(_record("gateway.tool_call_failed", 1, payload)).payload
    assert isinstance(decoded, ToolCallFailed)
    assert (decoded.reason, decoded.transient, decoded.revisions) == ("boom", None, ())
    assert _facts(decoded) == UNKNOWN_FACTS


def test_an_old_approval_request_keeps_its_action_hash() -> None:
    payload = {"call_id": "run-1:0", "tool": "restart__demo", "action_hash": HASH, "revisions": []}
    decoded = CODEC.decode(_record("gateway.approval_required", 1, payload)).payload
    assert isinstance(decoded, ApprovalRequired)
    assert (decoded.tool, decoded.action_hash) == ("restart__demo", HASH)
    assert (decoded.scope, decoded.mode, decoded.reason) == (None, None, "")
