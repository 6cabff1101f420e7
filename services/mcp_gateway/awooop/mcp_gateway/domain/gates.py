"""The five gates every tool call passes, in order; each refusal names its gate and code.

1. the tool is known, enabled, and its live description and input schema still hash to
   the contract's pin (``E-MCP-GATE-001``);
2. the run's agent is known, active, and granted the tool (``E-MCP-GATE-002``);
3. the scope granted covers the tool's (``003``), the arguments validate against the
   input schema (``004``), and the project's mode lets the call through (``005``: in
   ``shadow`` every write, admin and destructive call is blocked, recorded as needing an
   approval elsewhere);
4. the tenant is not killed (``006``) and the rate limit allows the call (``007``);
5. wherever the mode table asks for one, an approval bound to this exact call.

Gates 1 to 3 and the kill switch are pure functions of the contracts, the live tool
listing and the gateway's folded kill switches: :func:`first_gates`. The rate limit
needs its buckets (one round trip per batch, see the processor), and gate 5 reads what
:func:`first_gates` found out (:attr:`Passed.approval`).

A refusal's reason never quotes an argument value: a schema error names the JSON
pointer and the keyword that failed, so a secret passed as an argument cannot travel
into an event through an error message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from awooop.contracts.families.agent import Agent
from awooop.contracts.families.policy import Mode, Policy, RateLimit
from awooop.contracts.families.tool import Tool
from awooop.contracts.registries.errors import (
    E_MCP_GATE_001,
    E_MCP_GATE_002,
    E_MCP_GATE_003,
    E_MCP_GATE_004,
    E_MCP_GATE_005,
    E_MCP_GATE_006,
    MCP_GATE_OF,
)
from awooop.security.canonical_json import NotCanonicalizable, canonical_json

Scope = Literal["read", "write", "admin"]
SCOPE_RANK: dict[str, int] = {"read": 0, "write": 1, "admin": 2}
NO_POLICY_MODE: Mode = "shadow"
"""A project with no active policy is in shadow mode (ARCHITECTURE §5)."""
MAX_SCHEMA_ERRORS = 5


class Revision(Protocol):
    """A signed contract revision as the gates read it."""

    @property
    def ref(self) -> str: ...

    @property
    def document(self) -> Any: ...


class GateContracts(Protocol):
    """The lookups of the contract view the gates use."""

    def tool(self, project_id: str, name: str) -> Any: ...

    def agent(self, project_id: str, agent_id: str) -> Any: ...

    def policy(self, project_id: str) -> Any: ...

    def at(self, project_id: str, ref: str, model: type[Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class GateRefusal:
    """Which gate refused a call, its `E-MCP-GATE-*` code, why, and the revisions read."""

    gate: int
    code: str
    reason: str
    revisions: tuple[str, ...] = ()
    retry_after: float | None = None
    would_need: Literal["approval"] | None = None


MAX_REASON_CHARS = 4096


def bounded(reason: str) -> str:
    """A reason cut to what the event field holds."""
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "…"


def refusal(code: str, reason: str, revisions: tuple[str, ...] = (), **extra: Any) -> GateRefusal:
    return GateRefusal(MCP_GATE_OF[code], code, reason, revisions, **extra)


@dataclass(frozen=True, slots=True)
class Passed:
    """A call through gates 1 to 3 and the kill switch: what gates 4 and 5 still need."""

    tool: Revision
    agent_id: str
    revisions: tuple[str, ...]
    """Tool, agent (pinned, then active when it differs) and policy revisions, in the
    order read."""
    mode: Mode
    policy_ref: str
    """The policy revision that decided the mode; empty when the project has none."""
    rate_limit: RateLimit | None
    approval: str | None
    """Why gate 5 holds the call for an approval; None when it runs without one."""
    pin_checked: bool
    """Whether gate 1 compared the pin with a live listing; otherwise the executor
    compares it right before the call (no session had listed the tools yet)."""


@dataclass(frozen=True, slots=True)
class GateInput:
    """One call as the gates see it."""

    project_id: str
    tool: str
    arguments: Mapping[str, Any]
    agent_ref: str | None
    """The agent revision whose step asked for the call (the request's first revision)."""


class Validators:
    """Compiled input-schema validators, one per tool revision (a revision never changes),
    with the property names each schema declares."""

    def __init__(self) -> None:
        self._by_ref: dict[str, tuple[Draft202012Validator, frozenset[str]]] = {}

    def errors(self, ref: str, schema: dict[str, Any], arguments: Mapping[str, Any]) -> list[str]:
        known = self._by_ref.get(ref)
        if known is None:
            known = self._by_ref[ref] = (Draft202012Validator(schema), declared_names(schema))
        validator, names = known
        described = sorted(
            _describe(error, names) for error in validator.iter_errors(dict(arguments))
        )
        return described[:MAX_SCHEMA_ERRORS]


def declared_names(schema: object) -> frozenset[str]:
    """Every property name a schema declares, at any depth (the words a pointer may show)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                found.update(key for key in properties if isinstance(key, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)


def _pointer(error: ValidationError, names: frozenset[str]) -> str:
    """The RFC 6901 JSON pointer of the failing value (`""` for the whole arguments); a key
    the schema does not declare is the agent's own word and shows as `*`."""
    parts = (
        str(part).replace("~", "~0").replace("/", "~1")
        if isinstance(part, int) or part in names
        else "*"
        for part in error.absolute_path
    )
    return "".join("/" + part for part in parts)


def _describe(error: ValidationError, names: frozenset[str]) -> str:
    """`<pointer>: <keyword> <schema value>`: the schema's words, never the argument's."""
    expected = json.dumps(error.validator_value, ensure_ascii=False, separators=(",", ":"))
    if len(expected) > 80:
        expected = expected[:79] + "…"
    return f"{_pointer(error, names) or '(root)'}: fails {error.validator} {expected}"


def unstorable(arguments: Mapping[str, Any]) -> str | None:
    """Why `arguments` cannot be kept, hashed or approved, or None: no RFC 8785 form (NaN,
    infinities, integers beyond 2**53, lone surrogates) or a NUL character, which no
    Postgres text or JSON value holds."""
    try:
        canonical = canonical_json(dict(arguments))
    except NotCanonicalizable:
        return (
            "the arguments have no canonical JSON form "
            "(NaN, infinity, an integer beyond 2**53 or a lone surrogate)"
        )
    if b"\\u0000" in canonical:  # RFC 8785 writes NUL escaped, in keys and values alike
        return "the arguments hold a NUL character, which no stored JSON can keep"
    return None


def first_gates(
    view: GateContracts,
    call: GateInput,
    *,
    listing: Mapping[str, str] | None,
    killed: bool,
    validators: Validators,
) -> Passed | GateRefusal:
    """Gates 1, 2, 3 and the kill switch of gate 4 for `call`.

    `listing` is the tool's server's live listing (server-side name → pin) or None when
    no session has listed yet; `killed` whether the project's kill switch is tripped.
    """
    tool = view.tool(call.project_id, call.tool)
    if tool is None:
        return refusal(E_MCP_GATE_001.code, f"tool {call.tool!r} has no active contract")
    document: Tool = tool.document
    read: tuple[str, ...] = (tool.ref,)
    if not document.enabled:
        return refusal(E_MCP_GATE_001.code, f"tool {call.tool!r} is disabled by {tool.ref}", read)
    if listing is not None:
        live = listing.get(document.tool)
        if live is None:
            reason = f"the server of {call.tool!r} no longer lists {document.tool!r}"
            return refusal(E_MCP_GATE_001.code, reason, read)
        if live != document.pinned_sha256:
            return refusal(E_MCP_GATE_001.code, pin_mismatch(call.tool, live, document), read)

    granted = _agent_grant(view, call, read)
    if isinstance(granted, GateRefusal):
        return granted
    agent_id, scope, read = granted

    if SCOPE_RANK[scope] < SCOPE_RANK[document.scope]:
        reason = (
            f"agent {agent_id!r} holds {scope!r} on {call.tool!r}, which needs {document.scope!r}"
        )
        return refusal(E_MCP_GATE_003.code, reason, read)
    broken = unstorable(call.arguments)
    if broken is not None:
        return refusal(E_MCP_GATE_004.code, broken, read)
    errors = validators.errors(tool.ref, document.input_schema, call.arguments)
    if errors:
        said = "; ".join(errors)
        reason = f"arguments invalid against the input schema of {call.tool!r}: {said}"
        return refusal(E_MCP_GATE_004.code, bounded(reason), read)

    policy = view.policy(call.project_id)
    policy_doc: Policy | None = policy.document if policy is not None else None
    policy_ref = policy.ref if policy is not None else ""
    if policy is not None:
        read = (*read, policy.ref)
    mode: Mode = policy_doc.mode if policy_doc is not None else NO_POLICY_MODE
    kind = action_kind(document)
    if mode == "shadow" and kind != "read":
        reason = (
            f"{kind} tool {call.tool!r} is blocked in shadow mode"
            f"{'' if policy is not None else ' (the project has no active policy)'}; "
            "in suggest or active mode it would need an approval"
        )
        return refusal(E_MCP_GATE_005.code, reason, read, would_need="approval")

    if killed:
        reason = f"project {call.project_id!r}'s kill switch is tripped; an operator must reset it"
        return refusal(E_MCP_GATE_006.code, reason, read)

    rate_limit = None
    if policy_doc is not None:
        rate_limit = next((r for r in policy_doc.rate_limits if r.tool == call.tool), None)
    return Passed(
        tool=tool,
        agent_id=agent_id,
        revisions=read,
        mode=mode,
        policy_ref=policy_ref,
        rate_limit=rate_limit,
        approval=approval_needed(mode, kind, call.tool, policy_doc),
        pin_checked=listing is not None,
    )


def pin_mismatch(name: str, live: str, document: Tool) -> str:
    return (
        f"the live description and input schema of {name!r} hash to {live[:12]}…, "
        f"not to the pinned {document.pinned_sha256[:12]}…: the tool changed on its server"
    )


def action_kind(tool: Tool) -> Literal["read", "write", "admin"]:
    """The tool's row of the mode table: a destructive tool counts as admin."""
    if tool.is_destructive:
        return "admin"
    return tool.scope


def approval_needed(
    mode: Mode, kind: Literal["read", "write", "admin"], name: str, policy: Policy | None
) -> str | None:
    """Why the mode table asks for an approval (``suggest``/``active``), or None."""
    if kind == "read":
        return None
    if mode == "active" and kind == "write":
        if policy is not None and name in policy.approval_required_tools:
            return f"the policy lists {name!r} as needing an approval in active mode"
        return None
    article = "an" if kind == "admin" else "a"
    return f"{article} {kind} tool needs an approval in {mode} mode"


def _agent_grant(
    view: GateContracts, call: GateInput, read: tuple[str, ...]
) -> tuple[str, str, tuple[str, ...]] | GateRefusal:
    """Gate 2: the agent revision that asked, the agent's active revision, and the scope
    both grant on the tool (the narrower, so a revoked or narrowed grant holds at once)."""
    if call.agent_ref is None:
        return refusal(E_MCP_GATE_002.code, "the request names no agent revision", read)
    pinned = view.at(call.project_id, call.agent_ref, Agent)
    if pinned is None:
        return refusal(E_MCP_GATE_002.code, f"agent revision {call.agent_ref!r} is not known", read)
    agent: Agent = pinned.document
    read = (*read, pinned.ref)
    active = view.agent(call.project_id, agent.agent_id)
    if active is None:
        return refusal(E_MCP_GATE_002.code, f"agent {agent.agent_id!r} is not active", read)
    if active.ref != pinned.ref:
        read = (*read, active.ref)
    scopes = [_granted(revision.document, call.tool) for revision in (pinned, active)]
    if None in scopes:
        which = pinned.ref if scopes[0] is None else active.ref
        reason = f"agent {agent.agent_id!r} is not granted {call.tool!r} by {which}"
        return refusal(E_MCP_GATE_002.code, reason, read)
    narrowest = min((s for s in scopes if s is not None), key=SCOPE_RANK.__getitem__)
    return agent.agent_id, narrowest, read


def _granted(agent: Agent, tool: str) -> str | None:
    return next((grant.scope for grant in agent.tools if grant.name == tool), None)
