"""The production event payloads; importing this package registers every one of them.

One module per producing area. A payload class is the current shape of its event type;
a new version of a published shape is a new version plus an upcaster, never an edit.
"""

from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    VoteRecorded,
    VoteRefused,
)
from awooop.contracts.events.payloads.budget import ScopeTripped, TenantKilled, TenantReset
from awooop.contracts.events.payloads.channel import DeliveryReported, OutboundRequested
from awooop.contracts.events.payloads.contract import (
    ContractActivated,
    ContractDraftCreated,
    ContractPublished,
    ContractRetired,
    ContractSigned,
)
from awooop.contracts.events.payloads.gateway import ToolCallBlocked, ToolCallSucceeded
from awooop.contracts.events.payloads.ingress import (
    ButtonPressed,
    DuplicateReceived,
    InboundIgnored,
    InboundRejected,
    MessageReceived,
)
from awooop.contracts.events.payloads.run import (
    RunCompleted,
    RunFailed,
    RunStarted,
    ToolCallRequested,
)

__all__ = [
    "ApprovalDenied",
    "ApprovalGranted",
    "ApprovalRequested",
    "ButtonPressed",
    "ContractActivated",
    "ContractDraftCreated",
    "ContractPublished",
    "ContractRetired",
    "ContractSigned",
    "DeliveryReported",
    "DuplicateReceived",
    "InboundIgnored",
    "InboundRejected",
    "MessageReceived",
    "OutboundRequested",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "ScopeTripped",
    "TenantKilled",
    "TenantReset",
    "ToolCallBlocked",
    "ToolCallRequested",
    "ToolCallSucceeded",
    "VoteRecorded",
    "VoteRefused",
]
