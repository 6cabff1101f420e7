"""The executor's attempts of an approved call, against a scripted server: a transient
failure is tried again (at most twice, never past the deadline), a permanent one never,
the tool's own error result is classified like any failure, a gateway stopping
between attempts still records the last failure as the outcome, and a credential the
server repeats in its answer or its error reaches neither."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from awooop.contracts.families.tool import Tool
from awooop.mcp_gateway.adapters.call_errors import CallFailure
from awooop.mcp_gateway.adapters.call_transactions import FinishedCall
from awooop.mcp_gateway.adapters.tool_calls import ClaimedCall
from awooop.mcp_gateway.domain.calls import ToolCall
from awooop.mcp_gateway.domain.results import CallError, CallResult, ToolAnswer
from awooop.mcp_gateway.executor import ToolCallExecutor
from support.contracts import deployed_tool

pytestmark = pytest.mark.unit

TOOL = Tool.model_validate(deployed_tool("restart_service"))
OK = ToolAnswer(structured={"service": "checkout", "restarts": 1}, texts=[], is_error=False)


def error_result(text: str) -> ToolAnswer:
    return ToolAnswer(structured=None, texts=[text], is_error=True)


class ScriptedServer:
    """Answers (or raises) each call from its script, in order, and counts the calls."""

    def __init__(self, *script: ToolAnswer | Exception) -> None:
        self.script = list(script)
        self.calls = 0
        self.called = asyncio.Event()

    async def current_listing(self, _project_id: str, tool: Tool) -> dict[str, str]:
        return {tool.tool: tool.pinned_sha256}

    async def call(self, _project_id: str, _tool: Tool, _arguments: dict[str, Any]) -> ToolAnswer:
        self.calls += 1
        self.called.set()
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class Outcomes:
    def __init__(self) -> None:
        self.finished: list[FinishedCall] = []

    def add(self, finished: FinishedCall) -> None:
        self.finished.append(finished)


def claimed(within: dt.timedelta = dt.timedelta(minutes=5)) -> ClaimedCall:
    call = ToolCall(
        call_id="call-1",
        run_id="run-1",
        project_id="acme",
        tool=TOOL.name,
        arguments={"service": "checkout"},
        execute_before=dt.datetime.now(dt.UTC) + within,
        trace_id="1" * 32,
        request_event_id=uuid.uuid4(),
    )
    return ClaimedCall(call, "restart-service@1:abc", uuid.uuid4(), 2)


async def attempts(
    server: ScriptedServer, delay: float = 0.0, call: ClaimedCall | None = None
) -> FinishedCall:
    executor = ToolCallExecutor(sessions=server)  # type: ignore[arg-type]
    executor._retry_delay = delay
    outcomes = Outcomes()
    await executor._approved(call or claimed(), TOOL, outcomes)  # type: ignore[arg-type]
    (finished,) = outcomes.finished
    return finished


async def test_a_transient_failure_then_an_answer_succeeds_with_one_retry() -> None:
    server = ScriptedServer(CallFailure("connection reset by peer", transient=True), OK)
    finished = await attempts(server, delay=0.01)
    assert isinstance(finished.outcome, CallResult)
    assert server.calls == 2
    (retry,) = finished.retries
    assert (retry.attempt, retry.code, retry.retry_in) == (1, "E-MCP-CALL-FAILED", 0.01)
    assert "connection reset" in retry.reason


async def test_a_tool_error_result_that_stays_transient_stops_after_three_attempts() -> None:
    server = ScriptedServer(*[error_result("503 service unavailable")] * 5)
    finished = await attempts(server, delay=0.01)
    assert isinstance(finished.outcome, CallError)
    assert finished.outcome.transient is True
    assert server.calls == 3
    assert [(r.attempt, r.retry_in) for r in finished.retries] == [(1, 0.01), (2, 0.02)]


@pytest.mark.parametrize(
    "failure",
    [
        error_result("503: not found"),
        error_result("the tool reported something odd"),
        CallFailure("HTTP 404", transient=False),
        CallFailure("timed out", transient=False),
    ],
)
async def test_a_permanent_failure_is_tried_once(failure: ToolAnswer | Exception) -> None:
    server = ScriptedServer(failure, OK)
    finished = await attempts(server)
    assert isinstance(finished.outcome, CallError)
    assert finished.outcome.transient is False
    assert (server.calls, finished.retries) == (1, ())


async def test_no_retry_would_start_after_the_deadline() -> None:
    server = ScriptedServer(error_result("429 too many requests"), OK)
    finished = await attempts(server, delay=5.0, call=claimed(dt.timedelta(seconds=2)))
    assert isinstance(finished.outcome, CallError)
    assert finished.outcome.transient is True
    assert (server.calls, finished.retries) == (1, ())


async def test_stopping_between_attempts_records_the_last_failure() -> None:
    server = ScriptedServer(error_result("service unavailable"), OK)
    executor = ToolCallExecutor(sessions=server)  # type: ignore[arg-type]
    executor._retry_delay = 60.0
    outcomes = Outcomes()
    task = asyncio.create_task(executor._approved(claimed(), TOOL, outcomes))  # type: ignore[arg-type]
    await server.called.wait()  # the attempt failed and the wait before the next began
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (finished,) = outcomes.finished
    assert isinstance(finished.outcome, CallError)
    assert (server.calls, finished.retries) == (1, ())


CREDENTIAL = "tenant-api-key-7f3a9c"


async def test_a_credential_the_server_repeats_in_its_answer_is_blotted() -> None:
    # The server was started with the tenant's key in its environment and echoes it,
    # in a structured field and in words; no pattern of the redaction knows its shape.
    echoed = ToolAnswer(
        structured={"service": "checkout", "debug": f"auth with {CREDENTIAL} ok"},
        texts=[],
        is_error=False,
        credentials=frozenset({CREDENTIAL, "abc"}),
    )
    finished = await attempts(ScriptedServer(echoed))
    assert isinstance(finished.outcome, CallResult)
    assert CREDENTIAL not in repr(finished.outcome.result)
    assert finished.outcome.result["service"] == "checkout"  # type: ignore[index]
    assert finished.outcome.redactions.get("secret") == 1
    quiet = ToolAnswer(structured=None, texts=[], is_error=False, credentials=echoed.credentials)
    assert CREDENTIAL not in repr(quiet)  # an answer never prints the session's credentials


async def test_a_credential_the_server_repeats_in_its_error_is_blotted() -> None:
    failed = ToolAnswer(
        structured=None,
        texts=[f"401: key {CREDENTIAL} was revoked"],
        is_error=True,
        credentials=frozenset({CREDENTIAL}),
    )
    finished = await attempts(ScriptedServer(failed))
    assert isinstance(finished.outcome, CallError)
    assert CREDENTIAL not in finished.outcome.reason
    assert "was revoked" in finished.outcome.reason
