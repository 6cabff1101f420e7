"""The error-code registry: every code AwoooP emits, each with a one-line meaning.

Codes are stable strings (``E-<AREA>-<DETAIL>``) that travel in events, DLQ headers,
logs and HTTP answers; the docs print :func:`error_table_markdown`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR_CODE_PATTERN = r"^E-[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One registered error code and what it means."""

    code: str
    meaning: str

    def __str__(self) -> str:
        return self.code


class CodedError(ValueError):
    """Base of every refusal that carries a registered code and a human reason.

    Subclasses set ``error``; the consumer puts ``code`` and ``reason`` into DLQ
    headers and answers without inspecting the exception type. A ``ValueError``:
    what it refuses is data.
    """

    error: ErrorCode

    def __init__(self, reason: str) -> None:
        super().__init__(f"{self.error.code}: {reason}")
        self.reason = reason

    @property
    def code(self) -> str:
        """The registered error code string, e.g. ``E-DLQ-INVALID``."""
        return self.error.code


def _code(code: str, meaning: str) -> ErrorCode:
    if re.fullmatch(ERROR_CODE_PATTERN, code) is None:
        msg = f"malformed error code {code!r}"
        raise ValueError(msg)
    return ErrorCode(code, meaning)


E_BROKER_RESET = _code(
    "E-BROKER-RESET", "the broker epoch changed: the broker lost its data or is another one"
)
E_SERVICE_CRASHED = _code(
    "E-SERVICE-CRASHED",
    "a long-lived task of a service process failed; the process exits for its supervisor",
)
E_SCHEMA_BEHIND = _code(
    "E-SCHEMA-BEHIND",
    "a service's schema has not reached its code's migrations: run `awooop migrate` first",
)
E_TOPIC_CONFIG = _code(
    "E-TOPIC-CONFIG",
    "a topic's configuration (retention, replication, record size) differs from the registry",
)
E_TOPIC_PARTITIONS = _code(
    "E-TOPIC-PARTITIONS", "an existing topic's partition count differs from the topic registry"
)
E_DLQ_DECODE = _code(
    "E-DLQ-DECODE", "a record could not be decoded (not UTF-8 JSON, not an object)"
)
E_DLQ_INVALID = _code("E-DLQ-INVALID", "an envelope failed validation against its event type")
E_DLQ_UPCAST = _code(
    "E-DLQ-UPCAST", "an upcaster failed or a link of the upcaster chain is missing"
)
E_DLQ_HANDLER = _code(
    "E-DLQ-HANDLER", "a handler error repeated when the record was processed alone"
)
E_DLQ_OVERSIZE = _code("E-DLQ-OVERSIZE", "a record is over the 1 MiB record size limit")
E_EVENT_TYPE_UNKNOWN = _code(
    "E-EVENT-TYPE-UNKNOWN", "the event_type is not in this reader's event-type registry"
)
E_EVENT_VERSION_NEWER = _code(
    "E-EVENT-VERSION-NEWER",
    "the schema_version is newer than this reader knows: deploy a newer one",
)
E_INBOUND_INVALID = _code(
    "E-INBOUND-INVALID", "an inbound channel record is malformed or fails validation"
)
E_INBOUND_OVERSIZE = _code("E-INBOUND-OVERSIZE", "an inbound channel record is over 1 MiB")
E_INBOUND_UNBOUND = _code(
    "E-INBOUND-UNBOUND",
    "no active channel_binding gives the record's bot and chat to an active agent of its project",
)
E_DELIVERY_REFUSED = _code(
    "E-DELIVERY-REFUSED", "the chat provider refused an outbound message for good (a 4xx)"
)
E_DELIVERY_UNAVAILABLE = _code(
    "E-DELIVERY-UNAVAILABLE",
    "the chat provider kept failing (5xx, 429, unreachable) until the message's deadline",
)
E_DELIVERY_EXPIRED = _code(
    "E-DELIVERY-EXPIRED", "an outbound message's deliver_before passed before it could be sent"
)
E_DELIVERY_UNKNOWN = _code(
    "E-DELIVERY-UNKNOWN",
    "a delivery attempt was interrupted mid-call: it may have reached the chat, never re-sent",
)
E_DELIVERY_CREDENTIAL = _code(
    "E-DELIVERY-CREDENTIAL",
    "no active channel_binding of the project covers the chat, or its bot token is unresolvable",
)
E_AGENT_PROVIDER = _code(
    "E-AGENT-PROVIDER", "the agent's provider kind is not one this runtime serves"
)
E_AGENT_UNKNOWN = _code(
    "E-AGENT-UNKNOWN", "the run's agent has no signed revision in its project (retired meanwhile)"
)
E_RUN_STATE_001 = _code(
    "E-RUN-STATE-001", "illegal run state transition under the runtime_run_state contract"
)
E_SCHEMA_001 = _code(
    "E-SCHEMA-001", "structured output still invalid against the agent's schema after retries"
)
E_LLM_FAILED = _code(
    "E-LLM-FAILED", "the LLM provider refused the step for good (not a 429, 5xx or timeout)"
)
E_LLM_CREDENTIAL = _code(
    "E-LLM-CREDENTIAL", "the agent's provider credential reference resolves to nothing"
)
E_BUDGET_REFUSED = _code(
    "E-BUDGET-REFUSED", "a budget scope could not fund the step's reservation: the run failed"
)
E_BUDGET_UNPRICED = _code(
    "E-BUDGET-UNPRICED", "a money limit applies but the budget prices not the agent's model"
)
E_BUDGET_KILLED = _code(
    "E-BUDGET-KILLED", "the tenant's kill switch is tripped: active runs cancelled, none started"
)
E_RUN_CANCELLED = _code("E-RUN-CANCELLED", "an operator or approver cancelled the run")
E_RUN_UNKNOWN = _code(
    "E-RUN-UNKNOWN", "a run command names no run, or a run of a project its token does not name"
)
E_RUN_ENDED = _code(
    "E-RUN-ENDED", "a run command names a run that already completed, failed or timed out"
)
E_RUN_INTERRUPTED = _code(
    "E-RUN-INTERRUPTED", "a newer message of the same subject interrupted the run"
)
E_CONFLICT_BOUND = _code(
    "E-CONFLICT-BOUND", "aggregate version conflicts persisted past the retry bound: an outage"
)
E_RELAY_PARKED = _code(
    "E-RELAY-PARKED", "the relay moved an outbox row it can never publish to outbox_parked"
)
E_RELAY_OVERSIZE = _code(
    "E-RELAY-OVERSIZE", "an outbox row's record is over the 1 MiB record size limit"
)
E_RELAY_TOPIC_UNKNOWN = _code(
    "E-RELAY-TOPIC-UNKNOWN", "an outbox row names a topic that is not in the topic registry"
)
E_RELAY_KEYLESS = _code("E-RELAY-KEYLESS", "an outbox row has no key, so it has no partition")
E_RELAY_REFUSED = _code(
    "E-RELAY-REFUSED", "the broker refused an outbox row's record (size, validity, authorization)"
)
E_RELAY_BEHIND = _code(
    "E-RELAY-BEHIND", "an outbox row waits behind an earlier parked row of the same topic and key"
)
E_RUN_BUSY = _code(
    "E-RUN-BUSY", "a message arrived while the subject's run was active; the agent rejects it"
)
E_RUN_ATTEMPTS = _code(
    "E-RUN-ATTEMPTS", "a run's step lease expired more often than its max_attempts allow"
)
E_RUN_TIMEOUT = _code("E-RUN-TIMEOUT", "a run passed its timeout_at before completing")
E_MCP_CALL_FAILED = _code("E-MCP-CALL-FAILED", "an admitted tool call raised or returned an error")
E_MCP_CALL_EXPIRED = _code(
    "E-MCP-CALL-EXPIRED", "an admitted tool call was not started before its execute_before"
)
E_MCP_CALL_UNKNOWN = _code(
    "E-MCP-CALL-UNKNOWN",
    "a call was started but its outcome was never recorded (process died): never retried",
)
E_MCP_CREDENTIAL = _code(
    "E-MCP-CREDENTIAL",
    "a credential reference of the tool resolves to nothing in its project's own namespace",
)
E_MCP_GATE_001 = _code(
    "E-MCP-GATE-001", "gate 1: tool unknown, disabled, or no longer matching its pinned hash"
)
E_MCP_GATE_002 = _code("E-MCP-GATE-002", "gate 2: agent unknown or not allowed this tool")
E_MCP_GATE_003 = _code(
    "E-MCP-GATE-003", "gate 3: the scope granted to the agent does not cover the tool's scope"
)
E_MCP_GATE_004 = _code("E-MCP-GATE-004", "gate 3: arguments invalid against the tool's schema")
E_MCP_GATE_005 = _code(
    "E-MCP-GATE-005",
    "gate 3: a write, admin or destructive call blocked in shadow mode "
    "(recorded as what it would have needed)",
)
E_MCP_GATE_006 = _code("E-MCP-GATE-006", "gate 4: the tenant is killed (kill switch tripped)")
E_MCP_GATE_007 = _code("E-MCP-GATE-007", "gate 4: rate limited; retry after the given delay")
E_MCP_GATE_008 = _code(
    "E-MCP-GATE-008", "gate 5: approval token missing, invalid or expired for write/admin scope"
)
E_MCP_GATE_009 = _code("E-MCP-GATE-009", "gate 5: approval token replayed or bound to another call")
E_APPROVAL_REJECTED = _code(
    "E-APPROVAL-REJECTED", "an approval request was rejected by its approvers; the call never runs"
)
E_APPROVAL_EXPIRED = _code(
    "E-APPROVAL-EXPIRED",
    "an approval request expired (or its run timed out) before enough approvers granted it",
)
E_APPROVAL_NOT_APPROVER = _code(
    "E-APPROVAL-NOT-APPROVER", "a vote by someone the request's policy does not list as approver"
)
E_APPROVAL_REQUESTER = _code(
    "E-APPROVAL-REQUESTER", "the person whose message started the run voted on its own request"
)
E_APPROVAL_DUPLICATE = _code(
    "E-APPROVAL-DUPLICATE", "an approver voted again on one request: one person counts once"
)
E_APPROVAL_DECIDED = _code(
    "E-APPROVAL-DECIDED", "a vote on a request already granted, denied or expired"
)
E_APPROVAL_UNKNOWN = _code("E-APPROVAL-UNKNOWN", "a vote names no approval request of the project")
E_APPROVAL_POLICY = _code(
    "E-APPROVAL-POLICY",
    "the policy revision the gateway read cannot build a request (unknown, or k above n)",
)
E_CONTRACT_SIG_MALFORMED = _code(
    "E-CONTRACT-SIG-MALFORMED", "a contract signature is not well formed (fields, kid, lengths)"
)
E_CONTRACT_SIG_KID = _code(
    "E-CONTRACT-SIG-KID", "a contract signature names a key id the verifying key ring lacks"
)
E_CONTRACT_SIG_RETIRED = _code(
    "E-CONTRACT-SIG-RETIRED", "a contract signature names a retired key, which verifies nothing"
)
E_CONTRACT_SIG_ALG = _code(
    "E-CONTRACT-SIG-ALG", "a contract signature claims another algorithm than its key's pinned one"
)
E_CONTRACT_SIG_BODY = _code(
    "E-CONTRACT-SIG-BODY", "a contract body has no RFC 8785 canonical form, so it cannot be signed"
)
E_CONTRACT_SIG_DIGEST = _code(
    "E-CONTRACT-SIG-DIGEST", "a contract body does not hash to its signed digest: it was altered"
)
E_CONTRACT_SIG_BAD = _code(
    "E-CONTRACT-SIG-BAD", "a contract signature does not verify under its key (wrong key, forged)"
)
E_CONTRACT_BODY_INVALID = _code(
    "E-CONTRACT-BODY-INVALID",
    "a contract body fails its family's schema, model or rules; the reason lists each pointer",
)
E_CONTRACT_STATE = _code(
    "E-CONTRACT-STATE",
    "the contract command is not allowed in the revision's lifecycle state (e.g. sign a draft)",
)
E_CONTRACT_SIGNER_AUTHOR = _code(
    "E-CONTRACT-SIGNER-AUTHOR", "the author of a contract revision cannot sign it"
)
E_CONTRACT_SIGNER_REPEATED = _code(
    "E-CONTRACT-SIGNER-REPEATED", "the signer has already signed this contract revision"
)
E_CONTRACT_FAMILY = _code(
    "E-CONTRACT-FAMILY",
    "a draft names an unknown family, or another family than the contract's earlier revisions",
)
E_CONTRACT_UNKNOWN = _code("E-CONTRACT-UNKNOWN", "no such contract, or no such revision of it")
E_CONTRACT_CHANNEL_HELD = _code(
    "E-CONTRACT-CHANNEL-HELD",
    "a channel_binding names a bot or app another project's active binding holds",
)
E_CONTRACT_CLAIM_HELD = _code(
    "E-CONTRACT-CLAIM-HELD",
    "a contract defines an agent, tool, chat, policy or budget another active contract "
    "of the project defines",
)
E_CONTRACT_REQUEST_REUSED = _code(
    "E-CONTRACT-REQUEST-REUSED",
    "a contract command's request_id was used before for another command or body",
)
E_API_UNAUTHORIZED = _code(
    "E-API-UNAUTHORIZED", "an HTTP command without a bearer token, or with an invalid one"
)
E_API_FORBIDDEN = _code(
    "E-API-FORBIDDEN", "the bearer token does not grant the project or the role the command needs"
)
E_API_REQUEST_INVALID = _code(
    "E-API-REQUEST-INVALID", "an HTTP request's path or JSON body does not match its schema"
)
E_API_UNAVAILABLE = _code(
    "E-API-UNAVAILABLE", "a command could not reach its database; nothing was written, retry it"
)

_ALL = (
    E_RUN_BUSY,
    E_RUN_ATTEMPTS,
    E_RUN_TIMEOUT,
    E_MCP_CALL_FAILED,
    E_MCP_CALL_EXPIRED,
    E_MCP_CALL_UNKNOWN,
    E_MCP_CREDENTIAL,
    E_BROKER_RESET,
    E_SERVICE_CRASHED,
    E_SCHEMA_BEHIND,
    E_TOPIC_CONFIG,
    E_TOPIC_PARTITIONS,
    E_DLQ_DECODE,
    E_DLQ_INVALID,
    E_DLQ_UPCAST,
    E_DLQ_HANDLER,
    E_DLQ_OVERSIZE,
    E_EVENT_TYPE_UNKNOWN,
    E_EVENT_VERSION_NEWER,
    E_INBOUND_INVALID,
    E_INBOUND_OVERSIZE,
    E_INBOUND_UNBOUND,
    E_DELIVERY_REFUSED,
    E_DELIVERY_UNAVAILABLE,
    E_DELIVERY_EXPIRED,
    E_DELIVERY_UNKNOWN,
    E_DELIVERY_CREDENTIAL,
    E_AGENT_PROVIDER,
    E_AGENT_UNKNOWN,
    E_RUN_STATE_001,
    E_SCHEMA_001,
    E_LLM_FAILED,
    E_LLM_CREDENTIAL,
    E_BUDGET_REFUSED,
    E_BUDGET_UNPRICED,
    E_BUDGET_KILLED,
    E_RUN_CANCELLED,
    E_RUN_UNKNOWN,
    E_RUN_ENDED,
    E_RUN_INTERRUPTED,
    E_CONFLICT_BOUND,
    E_RELAY_PARKED,
    E_RELAY_OVERSIZE,
    E_RELAY_TOPIC_UNKNOWN,
    E_RELAY_KEYLESS,
    E_RELAY_REFUSED,
    E_RELAY_BEHIND,
    E_MCP_GATE_001,
    E_MCP_GATE_002,
    E_MCP_GATE_003,
    E_MCP_GATE_004,
    E_MCP_GATE_005,
    E_MCP_GATE_006,
    E_MCP_GATE_007,
    E_MCP_GATE_008,
    E_MCP_GATE_009,
    E_APPROVAL_REJECTED,
    E_APPROVAL_EXPIRED,
    E_APPROVAL_NOT_APPROVER,
    E_APPROVAL_REQUESTER,
    E_APPROVAL_DUPLICATE,
    E_APPROVAL_DECIDED,
    E_APPROVAL_UNKNOWN,
    E_APPROVAL_POLICY,
    E_CONTRACT_SIG_MALFORMED,
    E_CONTRACT_SIG_KID,
    E_CONTRACT_SIG_RETIRED,
    E_CONTRACT_SIG_ALG,
    E_CONTRACT_SIG_BODY,
    E_CONTRACT_SIG_DIGEST,
    E_CONTRACT_SIG_BAD,
    E_CONTRACT_BODY_INVALID,
    E_CONTRACT_STATE,
    E_CONTRACT_SIGNER_AUTHOR,
    E_CONTRACT_SIGNER_REPEATED,
    E_CONTRACT_FAMILY,
    E_CONTRACT_UNKNOWN,
    E_CONTRACT_CHANNEL_HELD,
    E_CONTRACT_CLAIM_HELD,
    E_CONTRACT_REQUEST_REUSED,
    E_API_UNAUTHORIZED,
    E_API_FORBIDDEN,
    E_API_REQUEST_INVALID,
    E_API_UNAVAILABLE,
)

ERROR_CODES: dict[str, ErrorCode] = {entry.code: entry for entry in _ALL}
"""Every registered code, keyed by its string, in registry order."""

MCP_GATE_OF: dict[str, int] = {
    E_MCP_GATE_001.code: 1,
    E_MCP_GATE_002.code: 2,
    E_MCP_GATE_003.code: 3,
    E_MCP_GATE_004.code: 3,
    E_MCP_GATE_005.code: 3,
    E_MCP_GATE_006.code: 4,
    E_MCP_GATE_007.code: 4,
    E_MCP_GATE_008.code: 5,
    E_MCP_GATE_009.code: 5,
}
"""The gate (1..5) that refuses a call with each ``E-MCP-GATE-*`` code."""

if len(ERROR_CODES) != len(_ALL):
    msg = "duplicate error code in the registry"
    raise RuntimeError(msg)


def error_code(code: str) -> ErrorCode:
    """Look a code up; ``KeyError`` naming the code when it is not registered."""
    try:
        return ERROR_CODES[code]
    except KeyError:
        msg = f"unregistered error code {code!r}"
        raise KeyError(msg) from None


def error_table_markdown() -> str:
    """Render the registry as a Markdown table (code, meaning), one row per code."""
    escaped_pipe = "\\|"
    rows = ["| code | meaning |", "|---|---|"]
    for entry in ERROR_CODES.values():
        rows.append(f"| `{entry.code}` | {entry.meaning.replace('|', escaped_pipe)} |")
    return "\n".join(rows) + "\n"
