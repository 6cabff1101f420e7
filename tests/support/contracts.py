"""Contracts for tests: signed contract events as the approval service writes them.

Tests that run ingress, the runtime or the gateway need active contracts for their
project. `publish_contracts` produces the lifecycle of each document (drafted,
published with a signature of `TEST_SIGNING_SPEC`, activated) straight onto the
contract topic; `view_of` folds the same events in memory for tests that call a
processor directly. The services of the shared stack verify with `TEST_RING` (the
public half), so these revisions are active for them as the approval service's are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer

from awooop.contracts.events.payloads.contract import (
    ContractActivated,
    ContractDraftCreated,
    ContractPublished,
    PublicationSignature,
)
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, EventPayload, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.active import ContractFold, ContractView
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.settings import Settings
from awooop.security.contract_signing import sign
from awooop.security.signing_keys import KeyRing, SigningKey, generate_ed25519_keys
from awooop.security.tool_pins import tool_pin_sha256

_KEYS = generate_ed25519_keys("test-contracts")
TEST_SIGNING_SPEC = _KEYS.signing_spec
TEST_RING = _KEYS.verifying_spec
"""The verifying key ring of every service the tests start on the shared stack."""

CODEC = EnvelopeCodec()
AUTHOR = "operator:test-author"
SIGNER = "operator:test-signer"

DEMO_SERVER = ["{python}", "-m", "awooop.mcp_gateway.demo_server"]
STATUS_DESCRIPTION = "Reports the health of one service of the demo estate."
STATUS_SCHEMA = {
    "type": "object",
    "title": "statusArguments",
    "properties": {"service": {"type": "string", "title": "Service"}},
    "required": ["service"],
}
"""The input schema exactly as the demo server lists `status`: its pin is the live one."""


def bot_of(project: str) -> str:
    """A Telegram bot id of the project's own, so projects of one stack never share a bot."""
    return str(int(hashlib.sha256(project.encode()).hexdigest()[:12], 16) % 10**12 + 1)


def agent_body(
    agent_id: str = "demo-agent", *, script: list[dict[str, Any]] | None = None, **limits: Any
) -> dict[str, Any]:
    """A scripted agent granted `status__demo`: by default it checks `checkout`, then answers."""
    steps = script or [
        {"call_tool": "status__demo", "arguments": {"service": "checkout"}},
        {"reply": "Here is what I found: {result}"},
    ]
    return {
        "family": "agent",
        "schema_version": 1,
        "agent_id": agent_id,
        "provider": {"kind": "scripted", "script": steps},
        "history_turns": 0,
        "tools": [{"name": "status__demo", "scope": "read"}],
        "max_steps": 10,
        "max_consecutive_failures": 3,
        "step_timeout_seconds": limits.get("step_timeout_seconds", 30),
        "run_timeout_seconds": limits.get("run_timeout_seconds", 300),
        "max_attempts": limits.get("max_attempts", 3),
        "double_texting": limits.get("double_texting", "reject"),
        "progress_after_seconds": limits.get("progress_after_seconds", 30),
    }


def status_tool_body(*, enabled: bool = True) -> dict[str, Any]:
    """The demo server's `status` tool over stdio, pinned to its description and schema."""
    return {
        "family": "tool",
        "schema_version": 1,
        "name": "status__demo",
        "provider": "demo",
        "tool": "status",
        "description": STATUS_DESCRIPTION,
        "transport": {"kind": "stdio", "command": DEMO_SERVER},
        "scope": "read",
        "is_destructive": False,
        "observation_only": False,
        "input_schema": STATUS_SCHEMA,
        "pinned_sha256": tool_pin_sha256(STATUS_DESCRIPTION, STATUS_SCHEMA),
        "credentials": {},
        "enabled": enabled,
    }


OPS_SCHEMA = {
    "type": "object",
    "properties": {"service": {"type": "string", "minLength": 1}},
    "required": ["service"],
    "additionalProperties": False,
}


DEPLOYED_DEMO = Path(__file__).resolve().parents[2] / "deploy" / "contracts" / "demo"


def deployed_tool(tool: str) -> dict[str, Any]:
    """The demo project's contract body of `tool`, pinned to the demo server as it is."""
    body = yaml.safe_load((DEPLOYED_DEMO / f"tool-{tool.replace('_', '-')}.yaml").read_text())
    return dict(body["body"])


def tool_body(
    tool: str,
    *,
    scope: str = "read",
    destructive: bool = False,
    description: str | None = None,
    input_schema: dict[str, Any] | None = None,
    provider: str = "demo",
    transport: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A tool contract of `tool` on `provider`, pinned to `description` and `input_schema`
    (a tool the server does not offer passes the gates a test is about and fails later)."""
    description = description if description is not None else f"The {tool} tool."
    schema = input_schema if input_schema is not None else OPS_SCHEMA
    return {
        "family": "tool",
        "schema_version": 1,
        "name": f"{tool}__{provider}",
        "provider": provider,
        "tool": tool,
        "description": description,
        "transport": transport or {"kind": "stdio", "command": DEMO_SERVER},
        "scope": scope,
        "is_destructive": destructive,
        "observation_only": False,
        "input_schema": schema,
        "pinned_sha256": tool_pin_sha256(description, schema),
        "credentials": credentials or {},
        "enabled": True,
    }


def policy_body(
    mode: str,
    *,
    rate_limits: list[dict[str, Any]] | None = None,
    approval_required_tools: list[str] | None = None,
) -> dict[str, Any]:
    """A policy in `mode` with two approvers, one approval required."""
    return {
        "family": "policy",
        "schema_version": 1,
        "mode": mode,
        "approvers": [
            {"approver_id": "alice", "chat_subjects": [], "api_subject": "operator:alice"},
            {"approver_id": "bob", "chat_subjects": [], "api_subject": "operator:bob"},
        ],
        "approvals_required": 1,
        "approval_expiry_seconds": 300,
        "rate_limits": rate_limits or [],
        "approval_required_tools": approval_required_tools or [],
    }


def granting(agent: dict[str, Any], *grants: tuple[str, str]) -> dict[str, Any]:
    """`agent` with its tools granted as (name, scope) pairs instead."""
    return {**agent, "tools": [{"name": name, "scope": scope} for name, scope in grants]}


def telegram_binding_body(bot_id: str, agent_id: str = "demo-agent") -> dict[str, Any]:
    """Every chat of `bot_id` goes to `agent_id`."""
    return {
        "family": "channel_binding",
        "schema_version": 1,
        "agent_id": agent_id,
        "channel": {
            "kind": "telegram",
            "bot_id": bot_id,
            "chat_ids": [],
            "bot_token": "env:TELEGRAM_BOT_TOKEN",
            "webhook_secret": "env:TELEGRAM_WEBHOOK_SECRET",
        },
    }


def slack_binding_body(
    team_id: str, app_id: str, channel_ids: Sequence[str] = (), agent_id: str = "demo-agent"
) -> dict[str, Any]:
    """`channel_ids` of the app in the workspace go to `agent_id` (none listed: every one)."""
    return {
        "family": "channel_binding",
        "schema_version": 1,
        "agent_id": agent_id,
        "channel": {
            "kind": "slack",
            "team_id": team_id,
            "app_id": app_id,
            "channel_ids": list(channel_ids),
            "bot_token": "env:SLACK_BOT_TOKEN",
            "signing_secret": "env:SLACK_SIGNING_SECRET",
        },
    }


def demo_documents(project: str, bot_id: str | None = None) -> dict[str, dict[str, Any]]:
    """The demo agent, its tool and a binding of the project's own bot, by contract id."""
    return {
        "demo-agent": agent_body(),
        "status-demo": status_tool_body(),
        "telegram": telegram_binding_body(bot_id or bot_of(project)),
    }


def lifecycle(
    project: str,
    contract_id: str,
    body: dict[str, Any],
    *,
    revision: int = 1,
    superseded: int | None = None,
    signing_spec: str = TEST_SIGNING_SPEC,
) -> list[Envelope[Any]]:
    """Revision `revision` of the contract drafted, published, signed and activated.

    Its stream positions follow the approval service's: four events per revision.
    """
    signature = sign(body, SigningKey.from_spec(signing_spec))
    payloads: list[EventPayload] = [
        ContractDraftCreated(
            contract_id=contract_id,
            family=body["family"],
            revision=revision,
            body=body,
            author=AUTHOR,
        ),
        ContractPublished(
            contract_id=contract_id,
            revision=revision,
            body_sha256=signature.body_sha256,
            signature=PublicationSignature(
                kid=signature.kid,
                alg=signature.alg,  # type: ignore[arg-type]
                body_sha256=signature.body_sha256,
                signature=signature.signature,
            ),
        ),
        ContractActivated(
            contract_id=contract_id,
            revision=revision,
            signers=(SIGNER,),
            superseded_revision=superseded,
        ),
    ]
    stream_id = f"{project}:{contract_id}"
    first = (revision - 1) * len(payloads) + 1
    return [
        new_envelope(
            payload,
            occurred_at=dt.datetime.now(dt.UTC),
            project_id=project,
            stream_type="contract",
            stream_id=stream_id,
            stream_seq=first + n,
            trace_id=new_trace_id(),
            correlation_id=stream_id,
            actor=AUTHOR,
            producer="approval",
        )
        for n, payload in enumerate(payloads)
    ]


def refs_of(envelopes: list[Envelope[Any]]) -> dict[str, str]:
    """The revision ref of each contract activated by `envelopes`, by contract id."""
    fold = ContractFold(KeyRing.from_spec(TEST_RING))
    for envelope in envelopes:
        fold.apply(envelope)
    return {
        contract_id: record.ref
        for (_project, contract_id, _n), record in fold.records.items()
        if record.state == "active"
    }


def view_of(*projects: tuple[str, Mapping[str, dict[str, Any]]]) -> ContractView:
    """The contract view of the given (project, documents) pairs, every revision active."""
    fold = ContractFold(KeyRing.from_spec(TEST_RING))
    for project, documents in projects:
        for contract_id, body in documents.items():
            for envelope in lifecycle(project, contract_id, body):
                fold.apply(envelope)
    return fold.view()


async def produce(settings: Settings, envelopes: list[Envelope[Any]]) -> None:
    """Write contract events onto the contract topic, keyed by their stream."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                Topics.CONTRACT_EVENTS.name,
                CODEC.encode(envelope),
                key=envelope.stream_id.encode(),
                headers=record_headers(envelope, make_traceparent(envelope.trace_id)),
            )
    finally:
        await producer.stop()


async def publish_contracts(
    settings: Settings, project: str, documents: Mapping[str, dict[str, Any]]
) -> dict[str, str]:
    """Activate every document as revision 1 of its contract; their refs by contract id."""
    envelopes = [
        envelope
        for contract_id, body in documents.items()
        for envelope in lifecycle(project, contract_id, body)
    ]
    await produce(settings, envelopes)
    return refs_of(envelopes)


class _EveryProjectView(ContractView):
    """A view in which every project holds the template project's contracts."""

    def __init__(self, template: ContractView) -> None:
        super().__init__()
        self._template = template

    def agent(self, project_id: str, agent_id: str) -> Any:
        return self._template.agent(TEMPLATE, agent_id)

    def tool(self, project_id: str, name: str) -> Any:
        return self._template.tool(TEMPLATE, name)

    def policy(self, project_id: str) -> Any:
        return self._template.policy(TEMPLATE)

    def budget(self, project_id: str) -> Any:
        return self._template.budget(TEMPLATE)

    def run_state(self, project_id: str) -> Any:
        return self._template.run_state(TEMPLATE)

    def at(self, project_id: str, ref: str, model: Any) -> Any:
        return self._template.at(TEMPLATE, ref, model)


TEMPLATE = "template"


def every_project(documents: Mapping[str, dict[str, Any]] | None = None) -> ContractSource:
    """Contracts for tests about leases, batches and steps rather than contracts: every
    project has the demo agent and tool (or `documents`), active as revision 1."""
    template = view_of((TEMPLATE, documents or demo_documents(TEMPLATE)))
    return ContractSource(_EveryProjectView(template))


def demo_agent_ref() -> str:
    """The ref of the demo agent's revision 1 (the same in every project's fold)."""
    return agent_ref(agent_body())


def agent_ref(body: dict[str, Any], contract_id: str = "demo-agent") -> str:
    """The ref revision 1 of the agent `body` gets as `contract_id`, in any project."""
    return view_of((TEMPLATE, {contract_id: body})).refs()[(TEMPLATE, contract_id)]
