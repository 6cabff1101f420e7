"""Turning a loaded JSON document into an envelope: the path for records not at the current
version, and for telling exactly why a record failed the fast path.

The document's ``event_type`` and ``schema_version`` pick the payload class; an older
payload is lifted through the registry's upcasters; the result is validated once.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from awooop.contracts.events.registry import EventTypeRegistry
from awooop.contracts.records.decode_errors import EnvelopeInvalid, UnsupportedSchemaVersion
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.parsing import describe_validation_error
from awooop.contracts.records.typed_envelopes import envelope_class


def current_version(registry: EventTypeRegistry, event_type: str, version: int) -> int:
    """The current version of ``event_type``; ``UnknownEventType`` for a type this reader
    does not know, ``UnsupportedSchemaVersion`` when ``version`` is newer than it. The one
    version check of every decoding path (headers first, then the body)."""
    current = registry.payload_class(event_type).schema_version
    if version > current:
        raise UnsupportedSchemaVersion(event_type, version, current)
    return current


def check_headers(
    header_version: int | None, header_type: str | None, version: int, event_type: str
) -> None:
    """Refuse a record whose headers contradict its body (``EnvelopeInvalid``).

    Consumers route and skip by headers, so a record whose headers lie is not trusted.
    """
    if header_type is not None and header_type != event_type:
        raise EnvelopeInvalid(f"header event_type {header_type!r} but body {event_type!r}")
    if header_version is not None and header_version != version:
        raise EnvelopeInvalid(f"header schema_version {header_version} but body {version}")


def envelope_from_document(
    registry: EventTypeRegistry,
    document: dict[str, Any],
    header_version: int | None = None,
    header_type: str | None = None,
    fast_error: ValidationError | None = None,
) -> Envelope[Any]:
    """Validate ``document`` as the envelope of its event type, upcasting it if older.

    ``fast_error`` is the failure of the fast path on the same record, reported as is
    when the document is already at the current version. Raises ``EnvelopeInvalid``,
    ``UnknownEventType``, ``UnsupportedSchemaVersion``, ``MissingUpcaster`` or
    ``UpcastFailed``.
    """
    event_type = document.get("event_type")
    version = document.get("schema_version")
    if not isinstance(event_type, str):
        raise EnvelopeInvalid("event_type is missing or not a string")
    if type(version) is not int or version < 1:
        raise EnvelopeInvalid("schema_version is missing or not an integer >= 1")
    current = current_version(registry, event_type, version)
    payload_type = registry.payload_class(event_type)
    check_headers(header_version, header_type, version, event_type)
    if version == current and fast_error is not None:
        raise EnvelopeInvalid(describe_validation_error(fast_error))
    if version < current:
        payload = document.get("payload")
        if not isinstance(payload, dict):
            raise EnvelopeInvalid("payload is missing or not an object")
        upcast = registry.upcast(event_type, version, payload)
        document = {**document, "schema_version": current, "payload": upcast}
    try:
        return envelope_class(payload_type).model_validate(document)
    except ValidationError as error:
        raise EnvelopeInvalid(describe_validation_error(error)) from error
