"""The gateway's decision per tool call, in process: everything it decides for a call
without the MCP call and without the database, timed call by call.

From the decoded `run.tool_call_requested` to the call's event: `requested_call`, gates
1 to 3 and the kill switch (`first_gates`, against an in-memory listing of the pins the
demo server lists, as the session pool keeps it), gate 4's rate limit
(`RateLimiter(None)`, one `take` per call), gate 5 (the action hash) and the outcome
event an answer needs (`approval_required` or `blocked`, encoded by `outcome_event`; an
admitted call has none). The processor does the same per batch; here each call is its
own batch, so no cost is shared between calls.

The calls are a fixed mix over the demo contracts: mostly admitted reads, writes and
admin calls held for an approval, and refusals at gates 1, 2, 4 (schema), the kill
switch and the rate limit. The limiter's clock is simulated, `ARRIVAL_MS` per call: the
buckets refill as if the calls arrived at that pace, which keeps the reads under their
limit and one noisy project over its own.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import E_MCP_GATE_007
from awooop.infra.contracts.active import ContractView
from awooop.mcp_gateway.adapters.rate_limits import BucketRequest, RateLimiter
from awooop.mcp_gateway.adapters.tool_calls import outcome_event
from awooop.mcp_gateway.domain.calls import approval_required, blocked, requested_call
from awooop.mcp_gateway.domain.gates import GateInput, Passed, Validators, first_gates, refusal
from awooop.security.action_hash import action_hash
from support.contracts import agent_body, deployed_tool, granting, policy_body, view_of
from support.gateway import request

GATE_P99_TARGET_MS = 0.5
ARRIVAL_MS = 60
"""Simulated time between two calls, over every project."""
WARMUP = 500
"""Calls decided first, untimed: the schema validators compile on a revision's first call."""
SERVING = 16
"""Projects sharing the ordinary traffic; every project has the same demo contracts."""
BYSTANDERS = 24
"""Projects in the view that receive no call, so lookups are not in a tiny view."""
NOISY = "bench-gates-noisy"
KILLED = "bench-gates-killed"
SERVICES = ("checkout", "payments", "search", "inventory", "auth", "shipping")
VOLUMES = ("scratch", "uploads", "cache")
TOOLS = ("status", "restart_service", "wipe_volume", "diagnose", "echo", "tail_log")
GRANTS = (("status__demo", "read"), ("restart_service__demo", "write"))
MIX: tuple[tuple[str, float], ...] = (
    ("read", 0.78),
    ("write", 0.08),
    ("admin", 0.03),
    ("not granted", 0.03),
    ("invalid arguments", 0.03),
    ("unknown tool", 0.02),
    ("killed", 0.01),
    ("noisy", 0.02),
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GateFigures:
    micros: dict[str, list[float]]
    """Per-call time in µs by outcome: `admitted`, `approval_required`, `blocked`."""
    codes: dict[str, int]
    """Blocked calls by error code."""
    projects: int
    """Projects in the contract view."""
    collections: tuple[int, ...]
    """Garbage collections of each generation during the timed calls."""

    @property
    def samples(self) -> list[float]:
        return [value for values in self.micros.values() for value in values]


def _documents(status_limit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    agent = granting(agent_body(), *GRANTS, ("wipe_volume__demo", "admin"))
    tools = {f"{tool}__demo": deployed_tool(tool) for tool in TOOLS}
    policy = policy_body(
        "active",
        rate_limits=[{"tool": "status__demo", **status_limit}],
        approval_required_tools=["restart_service__demo"],
    )
    return {"demo-agent": agent, **tools, "policy": policy}


def _view() -> tuple[ContractView, list[str]]:
    serving = [f"bench-gates-{n:02}" for n in range(SERVING)]
    ordinary = _documents({"per_minute": 60, "burst": 10})
    noisy = _documents({"per_minute": 6, "burst": 2})
    others = [f"bench-bystander-{n:02}" for n in range(BYSTANDERS)]
    projects = [(p, ordinary) for p in [*serving, KILLED, *others]]
    return view_of(*projects, (NOISY, noisy)), serving


def _requests(view: ContractView, serving: list[str], count: int) -> list[Envelope[Any]]:
    pick = random.Random(20)
    kinds, weights = zip(*MIX, strict=True)
    agent = view.refs()[(serving[0], "demo-agent")]
    out: list[Envelope[Any]] = []
    for n in range(count):
        kind = pick.choices(kinds, weights)[0]
        project = {"killed": KILLED, "noisy": NOISY}.get(kind, serving[n % len(serving)])
        service = {"service": pick.choice(SERVICES)}
        tool, arguments = {
            "write": ("restart_service__demo", service),
            "admin": ("wipe_volume__demo", {"volume": pick.choice(VOLUMES)}),
            "not granted": ("diagnose__demo", service),
            "invalid arguments": ("status__demo", {"name": service["service"]}),
            "unknown tool": ("restart_everything__demo", service),
        }.get(kind, ("status__demo", service))
        run = f"run-{n}"
        out.append(
            request(project, run, f"{run}-call", tool=tool, arguments=arguments, revision=agent)
        )
    return out


def _at_once(awaitable: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (the in-process limiter), without a loop."""
    try:
        awaitable.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    awaitable.close()
    raise RuntimeError("the in-process limiter waited for something")


def _decide(
    view: ContractView,
    listing: Callable[[str, Any], Mapping[str, str]],
    limiter: RateLimiter,
    validators: Validators,
    killed: frozenset[str],
    envelope: Envelope[Any],
) -> tuple[str, str | None]:
    """One call as the processor decides it; its outcome and, when blocked, the code."""
    call = requested_call(envelope)
    tool = view.tool(call.project_id, call.tool)
    decision = first_gates(
        view,
        GateInput(call.project_id, call.tool, call.arguments, call.agent_ref),
        listing=listing(call.project_id, tool.document) if tool else None,
        killed=call.project_id in killed,
        validators=validators,
    )
    if isinstance(decision, Passed) and decision.rate_limit is not None:
        rate = decision.rate_limit
        asked = BucketRequest(
            call.project_id, decision.agent_id, call.tool, rate.per_minute, rate.burst
        )
        (answer,) = _at_once(limiter.take([asked]))
        if not answer.allowed:
            reason = (
                f"{call.tool!r} is limited to {rate.per_minute} calls a minute "
                f"(burst {rate.burst}) per agent; retry after {answer.retry_after:.3f} s"
            )
            decision = refusal(
                E_MCP_GATE_007.code, reason, decision.revisions, retry_after=answer.retry_after
            )
    now = dt.datetime.now(dt.UTC)
    if not isinstance(decision, Passed):
        outcome_event(blocked(call, decision, now))
        return "blocked", decision.code
    if decision.approval is None:
        return "admitted", None
    hashed = action_hash(
        project_id=call.project_id,
        run_id=call.run_id,
        call_id=call.call_id,
        tool=call.tool,
        arguments=call.arguments,
        policy_revision=decision.policy_ref,
    )
    held = approval_required(
        call,
        action_hash=hashed,
        revisions=decision.revisions,
        scope=decision.tool.document.scope,
        mode=decision.mode,
        reason=decision.approval,
        at=now,
    )
    outcome_event(held)
    return "approval_required", None


def measure_gates(samples: int = 5000) -> GateFigures:
    """Decide `samples` calls of the mix, after `WARMUP` untimed ones; per-call µs."""
    view, serving = _view()
    pins = {d["tool"]: d["pinned_sha256"] for d in map(deployed_tool, TOOLS)}
    # The session pool's `listing`: one dict lookup per (project, provider) in memory.
    live = {(project, "demo"): pins for project in view.projects()}

    def listing(project_id: str, tool: Any) -> Mapping[str, str]:
        return live[(project_id, tool.provider)]

    simulated = [0.0]
    limiter = RateLimiter(None, clock=lambda: simulated[0])
    validators = Validators()
    killed = frozenset({KILLED})
    micros: dict[str, list[float]] = {}
    codes: dict[str, int] = {}
    warmup = min(WARMUP, samples)
    requests = _requests(view, serving, warmup + samples)
    # A full collection scans every object of this process: the bench's runs and the
    # requests above. Few objects outlive a call, so in the gateway's steady state full
    # collections are rare; here the requests, aging into the oldest generation, would
    # set them off again and again. What exists now is frozen out of collection; the
    # collections of what the calls leave behind still fall in the timings.
    gc.collect()
    gc.freeze()
    before = _collections()
    try:
        for n, envelope in enumerate(requests):
            if n == warmup:
                before = _collections()
            simulated[0] = n * ARRIVAL_MS / 1000
            started = time.perf_counter_ns()
            outcome, code = _decide(view, listing, limiter, validators, killed, envelope)
            took = (time.perf_counter_ns() - started) / 1000
            if n < warmup:
                continue
            micros.setdefault(outcome, []).append(took)
            if code is not None:
                codes[code] = codes.get(code, 0) + 1
        collections = tuple(a - b for a, b in zip(_collections(), before, strict=True))
    finally:
        gc.unfreeze()
    return GateFigures(micros, dict(sorted(codes.items())), len(view.projects()), collections)


def _collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]
