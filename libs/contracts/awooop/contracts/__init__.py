"""Event envelope, payloads, topic and error-code registries, contract schemas. Pure: no I/O.

The most used names are re-exported here. Each lives in a module named for what it is:
``envelope`` (the model, ids), ``typed_envelopes`` (``new_envelope``), ``codec``,
``envelope_documents`` (the upcast path), ``event_registry``, ``upcasting``,
``decode_errors``, ``headers``, ``inbound``, ``record_parsing``, ``topics``,
``service_names``, ``dead_letter``, ``errors``, ``payloads``, ``runtime_run_state``,
``run_state_machine`` and ``contract_families``.
"""

from awooop.contracts.events.registry import (
    EVENT_REGISTRY,
    EventTypeRegistry,
    register_payload,
    register_upcaster,
)
from awooop.contracts.families.run_state_machine import IllegalTransition, RunStateMachine
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.decode_errors import (
    EnvelopeDecodeError,
    EnvelopeInvalid,
    EnvelopeOversize,
    EnvelopeUndecodable,
    MissingUpcaster,
    UnknownEventType,
    UnsupportedSchemaVersion,
    UpcastFailed,
)
from awooop.contracts.records.envelope import Envelope, EventPayload, new_event_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, read_headers, record_headers
from awooop.contracts.records.inbound import InboundRecord, InboundRecordInvalid, parse_inbound
from awooop.contracts.records.typed_envelopes import envelope_class, new_envelope
from awooop.contracts.registries.topics import ALL_TOPICS, MAX_RECORD_BYTES, Topic, Topics, topic

__all__ = [
    "ALL_TOPICS",
    "EVENT_REGISTRY",
    "MAX_RECORD_BYTES",
    "Envelope",
    "EnvelopeCodec",
    "EnvelopeDecodeError",
    "EnvelopeInvalid",
    "EnvelopeOversize",
    "EnvelopeUndecodable",
    "EventPayload",
    "EventTypeRegistry",
    "IllegalTransition",
    "InboundRecord",
    "InboundRecordInvalid",
    "MissingUpcaster",
    "RunStateMachine",
    "Topic",
    "Topics",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "UpcastFailed",
    "envelope_class",
    "make_traceparent",
    "new_envelope",
    "new_event_id",
    "new_trace_id",
    "parse_inbound",
    "read_headers",
    "record_headers",
    "register_payload",
    "register_upcaster",
    "topic",
]
