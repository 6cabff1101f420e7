"""Why an envelope record could not be turned into an :class:`~awooop.contracts.Envelope`.

Each error carries a registered ``code`` and a human ``reason``, so the consumer can put
both into the DLQ headers without inspecting the exception type.
"""

# The exception names read as the failure itself (``EnvelopeInvalid``, ``UnknownEventType``),
# the vocabulary the DLQ and the docs use, hence no ``Error`` suffix.

from __future__ import annotations

from awooop.contracts.registries.errors import (
    E_DLQ_DECODE,
    E_DLQ_INVALID,
    E_DLQ_OVERSIZE,
    E_DLQ_UPCAST,
    E_EVENT_TYPE_UNKNOWN,
    E_EVENT_VERSION_NEWER,
    CodedError,
    ErrorCode,
)


class EnvelopeDecodeError(CodedError):
    """Base of every decoding failure; ``code`` is a registered error code."""

    error: ErrorCode = E_DLQ_INVALID


class EnvelopeUndecodable(EnvelopeDecodeError):
    """The bytes are not a UTF-8 JSON object."""

    error = E_DLQ_DECODE


class EnvelopeOversize(EnvelopeDecodeError):
    """The record is larger than the record size limit."""

    error = E_DLQ_OVERSIZE


class EnvelopeInvalid(EnvelopeDecodeError):
    """The JSON is an object but not a valid envelope for its event type."""

    error = E_DLQ_INVALID


class UnknownEventType(EnvelopeDecodeError):
    """The ``event_type`` is not registered with this reader."""

    error = E_EVENT_TYPE_UNKNOWN

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event_type {event_type!r}")
        self.event_type = event_type


class UnsupportedSchemaVersion(EnvelopeDecodeError):
    """The ``schema_version`` is newer than the current version this reader knows."""

    error = E_EVENT_VERSION_NEWER

    def __init__(self, event_type: str, version: int, current: int) -> None:
        super().__init__(
            f"{event_type} schema_version {version} is newer than the known version {current}"
        )
        self.event_type = event_type
        self.version = version
        self.current = current


class UpcastFailed(EnvelopeDecodeError):
    """An upcaster raised or returned something other than a payload object."""

    error = E_DLQ_UPCAST


class MissingUpcaster(UpcastFailed):
    """No upcaster is registered for one link of the chain to the current version."""

    def __init__(self, event_type: str, from_version: int) -> None:
        super().__init__(f"no upcaster for {event_type} from version {from_version}")
        self.event_type = event_type
        self.from_version = from_version
