"""The executor: runs admitted tool calls over MCP and answers each one exactly once.

A background job of the service process. It claims admitted calls (committed
before any MCP call, so a call id is started at most once), calls MCP outside
any transaction with at most `concurrency` calls in flight, and hands the
finished ones to the recorder, which answers them in groups and wakes the
relay. It wakes when the handler commits new admissions and polls briefly
otherwise, so work left by another process is found too. Calls left
`executing` by a process that is gone are answered `E-MCP-CALL-UNKNOWN` at
start-up and every `sweep_interval`, and never run again.

An approved call (one that waited for an approval) differs in two ways. A tool whose
contract says `observation_only` is never called: the call succeeds with a result
saying the action was observed, not performed. Otherwise a failure is classified
(`domain.retries`, the tool's own error result included) and a transient one is tried
again, at most twice, after `mcp_retry_delay_seconds` times the attempt number, while
the call's deadline allows; each retried attempt is recorded with the outcome, as
`gateway.tool_call_retried`. A process that dies between attempts leaves the call
`executing`: the sweep answers it `E-MCP-CALL-UNKNOWN`, and its attempts are not told.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from awooop.contracts.families.tool import Tool
from awooop.contracts.registries.errors import E_MCP_CALL_FAILED, E_MCP_CREDENTIAL, E_MCP_GATE_001
from awooop.infra.contracts.reader import ContractSource, contracts_of
from awooop.infra.logging import bind_context, get_logger
from awooop.infra.postgres.errors import is_database_outage
from awooop.infra.runner import ServiceRunner
from awooop.mcp_gateway.adapters import call_transactions
from awooop.mcp_gateway.adapters.call_transactions import Claimed, FinishedCall, Room
from awooop.mcp_gateway.adapters.executor_connection import ExecutorConnection
from awooop.mcp_gateway.adapters.mcp_sessions import (
    CallFailure,
    CredentialUnavailable,
    McpSessionPool,
)
from awooop.mcp_gateway.adapters.tool_calls import ClaimedCall
from awooop.mcp_gateway.domain.gates import GateRefusal, pin_mismatch, refusal
from awooop.mcp_gateway.domain.results import (
    CallError,
    bound_reason,
    observed,
    sensitive_values,
    shape_answer,
    with_credentials,
)
from awooop.mcp_gateway.domain.retries import (
    RetriedAttempt,
    classify,
    retry_delay,
    should_retry,
)
from awooop.mcp_gateway.outcome_recorder import BackOff, OutcomeRecorder

log = get_logger(__name__)

UNREADY = "mcp-executor"


class ToolCallExecutor:
    """Runs as `ServiceSpec.background`; `wake()` after committing new admitted calls."""

    def __init__(
        self,
        sessions: McpSessionPool | None = None,
        *,
        poll_interval: float = 0.5,
        sweep_interval: float = 5.0,
        max_backoff: float = 5.0,
        shutdown_grace: float = 5.0,
    ) -> None:
        self._contracts: ContractSource | None = None
        self._sessions = sessions
        self._concurrency = 1
        self._poll_interval = poll_interval
        self._sweep_interval = sweep_interval
        self._max_backoff = max_backoff
        self._shutdown_grace = shutdown_grace
        self._retry_delay = 0.5
        self._wakeup = asyncio.Event()

    @property
    def sessions(self) -> McpSessionPool:
        assert self._sessions is not None, "run() opens the pool"
        return self._sessions

    def wake(self) -> None:
        self._wakeup.set()

    def listing(self, project_id: str, tool: Tool) -> Mapping[str, str] | None:
        """Gate 1's view of the tool's server from memory (None before its first listing)."""
        return None if self._sessions is None else self._sessions.listing(project_id, tool)

    async def run(self, runner: ServiceRunner) -> None:
        assert runner.pool is not None
        self._contracts = contracts = contracts_of(runner)
        if self._sessions is None:
            self._sessions = McpSessionPool.from_settings(
                runner.settings, known_projects=lambda: contracts.view.projects()
            )
        self._concurrency = runner.settings.mcp_concurrency
        self._retry_delay = runner.settings.mcp_retry_delay_seconds
        db = ExecutorConnection(runner.pool, runner.instance_id)
        in_flight: set[asyncio.Task[None]] = set()

        stopping = False

        def room() -> int:
            # Once stopping, answers are still recorded, but nothing new is started.
            return 0 if stopping else self._concurrency - len(in_flight)

        def start(claimed: Claimed) -> None:
            if claimed.expired:
                _wake_relay(runner)
            for call in claimed.to_run:
                task = asyncio.create_task(self._execute(call, outcomes))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

        outcomes = OutcomeRecorder(db, room, start)

        async def back_off(stage: str, error: Exception, delay: float) -> float:
            return await self._back_off(runner, stage, error, delay)

        def recorded() -> None:
            runner.readiness.release(UNREADY)
            _wake_relay(runner)

        recorder = asyncio.create_task(outcomes.run(back_off, recorded), name="mcp-recorder")
        try:
            await self._claim_loop(db, runner, room, start, back_off)
        finally:
            stopping = True
            if in_flight:
                await asyncio.wait(in_flight, timeout=self._shutdown_grace)
            for task in (*in_flight, recorder):
                task.cancel()
            await asyncio.gather(*in_flight, recorder, return_exceptions=True)
            await outcomes.flush(self._shutdown_grace)
            await self.sessions.close()
            await db.close()

    async def _claim_loop(
        self,
        db: ExecutorConnection,
        runner: ServiceRunner,
        room: Room,
        start: Callable[[Claimed], None],
        back_off: BackOff,
    ) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = 0.0
        delay = 0.1
        while True:
            try:
                if loop.time() >= next_sweep:
                    if await call_transactions.sweep_abandoned(db):
                        _wake_relay(runner)
                    next_sweep = loop.time() + self._sweep_interval
                free = room()
                if free > 0:
                    claimed = await call_transactions.claim(db, room)
                    start(claimed)
                    runner.readiness.release(UNREADY)
                    delay = 0.1
                    if len(claimed.to_run) + claimed.expired >= free:
                        continue  # a full claim: more may be due
            except Exception as error:
                delay = await back_off("claim", error, delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
            self._wakeup.clear()

    async def _execute(self, claimed: ClaimedCall, outcomes: OutcomeRecorder) -> None:
        call = claimed.call
        with bind_context(project_id=call.project_id, run_id=call.run_id, trace_id=call.trace_id):
            assert self._contracts is not None, "run() sets the contracts"
            # The revision that admitted the call, even if another is active by now.
            admitted = self._contracts.view.at(call.project_id, claimed.revision, Tool)
            if admitted is None:
                reason = f"tool revision {claimed.revision!r} is not known"
                outcomes.add(FinishedCall(claimed, CallError(E_MCP_CALL_FAILED.code, reason)))
            elif claimed.approval_id is None:
                outcomes.add(await self._call(claimed, admitted.document))
            elif admitted.document.observation_only:
                outcomes.add(FinishedCall(claimed, observed(call.tool)))
            else:
                await self._approved(claimed, admitted.document, outcomes)
        # The slot this call held is claimed again when its answer is recorded (in the
        # same transaction): no wake-up, which would only find the calls claimed already.

    async def _approved(self, claimed: ClaimedCall, tool: Tool, outcomes: OutcomeRecorder) -> None:
        """An approved call: attempts until one succeeds, a failure is permanent, two
        retries are spent or the deadline would pass; the outcome and every retried
        attempt go to the recorder together."""
        retries: list[RetriedAttempt] = []
        attempt = 0
        while True:
            attempt += 1
            finished, transport_transient = await self._attempt(claimed, tool)
            failure = finished.outcome
            if not isinstance(failure, CallError):
                outcomes.add(replace(finished, retries=tuple(retries)))
                return
            verdict = classify(failure.reason, transport_transient)
            failure = replace(failure, transient=verdict.kind == "transient")
            ended = FinishedCall(claimed, failure, finished.latency_ms, tuple(retries))
            now = dt.datetime.now(dt.UTC)
            delay = retry_delay(self._retry_delay, attempt)
            left = (claimed.call.execute_before - now).total_seconds()
            if not should_retry(verdict, attempt, seconds_left=left, delay=delay):
                outcomes.add(ended)
                return
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                # Stopping between attempts: the last failure is the outcome, never unknown.
                outcomes.add(ended)
                raise
            retries.append(
                RetriedAttempt(attempt, failure.code, failure.reason, delay, ended.latency_ms, now)
            )

    async def _call(self, claimed: ClaimedCall, tool: Tool) -> FinishedCall:
        """Gate 1's pin against the live listing, then the MCP call; never raises."""
        finished, _ = await self._attempt(claimed, tool)
        return finished

    async def _attempt(self, claimed: ClaimedCall, tool: Tool) -> tuple[FinishedCall, bool | None]:
        """One attempt of `_call`, with what the transport concluded of a failure: its
        `transient`, or None when it knew nothing (the tool's own error result, or an
        error no transport raised)."""
        call = claimed.call
        hidden = sensitive_values(call.arguments)
        started: float | None = None
        try:
            listing = await self.sessions.current_listing(call.project_id, tool)
            changed = pin_refusal(call.tool, tool, listing, claimed.revision)
            if changed is not None:
                return FinishedCall(claimed, changed), None
            started = time.perf_counter()
            answer = await self.sessions.call(call.project_id, tool, call.arguments)
            took = _ms_since(started)
            blotted = with_credentials(hidden, answer.credentials)
            shaped = shape_answer(answer, E_MCP_CALL_FAILED.code, blotted)
            return FinishedCall(claimed, shaped, took), None
        except CredentialUnavailable as error:
            reason = bound_reason(error.reason, hidden)
            failure = CallError(E_MCP_CREDENTIAL.code, reason, transient=False)
        except CallFailure as error:
            reason = bound_reason(error.reason, hidden)
            failure = CallError(E_MCP_CALL_FAILED.code, reason, transient=error.transient)
        except Exception as error:
            reason = bound_reason(f"{type(error).__name__}: {error}", hidden)
            failure = CallError(E_MCP_CALL_FAILED.code, reason)
        latency = _ms_since(started) if started is not None else None
        return FinishedCall(claimed, failure, latency), failure.transient

    async def _back_off(
        self, runner: ServiceRunner, stage: str, error: Exception, delay: float
    ) -> float:
        if is_database_outage(error):
            log.warning("mcp_executor_outage", stage=stage, error=repr(error))
        else:
            log.exception("mcp_executor_error", stage=stage, error=repr(error))
        runner.readiness.hold(UNREADY, f"{stage}: {error!r}")
        await asyncio.sleep(delay)
        return min(delay * 2, self._max_backoff)


def pin_refusal(
    name: str, tool: Tool, listing: Mapping[str, str], revision: str
) -> GateRefusal | None:
    """Gate 1 again, right before the call: the tool as its server lists it now."""
    live = listing.get(tool.tool)
    if live == tool.pinned_sha256:
        return None
    reason = (
        f"the server of {name!r} no longer lists {tool.tool!r}"
        if live is None
        else pin_mismatch(name, live, tool)
    )
    return refusal(E_MCP_GATE_001.code, reason, (revision,))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _wake_relay(runner: ServiceRunner) -> None:
    if runner.relay is not None:
        runner.relay.wake()
