"""Encode envelopes to record values and decode record values back, by event type.

Decoding never re-encodes the stored bytes. A record at the current version of its event
type is parsed by one ``validate_json`` call: of its concrete envelope class when the
headers name the type and version, else of the discriminated union of every class; an
older one is loaded as JSON, its payload upcast to the current version, then validated.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

import awooop.contracts.events.payloads  # noqa: F401  (importing it registers the production types)
from awooop.contracts.events.registry import EVENT_REGISTRY, EventTypeRegistry
from awooop.contracts.records.decode_errors import EnvelopeOversize, EnvelopeUndecodable
from awooop.contracts.records.documents import (
    check_headers,
    current_version,
    envelope_from_document,
)
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.parsing import NotAJsonObjectError, load_json_object
from awooop.contracts.records.typed_envelopes import envelope_class
from awooop.contracts.registries.topics import MAX_RECORD_BYTES


class EnvelopeCodec:
    """Envelope record values for every event type of one :class:`EventTypeRegistry`.

    The union adapter is built on first use and rebuilt when the registry changes, so
    types registered after the codec was made are decoded too. Without a registry the
    codec serves the production one.
    """

    def __init__(self, registry: EventTypeRegistry | None = None) -> None:
        self.registry = EVENT_REGISTRY if registry is None else registry
        self._union: TypeAdapter[Envelope[Any]] | None = None
        self._generation = -1

    def encode(self, envelope: Envelope[Any]) -> bytes:
        """Return the record value: compact UTF-8 JSON of the envelope."""
        return envelope.model_dump_json().encode("utf-8")

    def decode(
        self, value: bytes, schema_version: int | None = None, event_type: str | None = None
    ) -> Envelope[Any]:
        """Turn a record value into its concrete envelope.

        ``schema_version`` and ``event_type`` are the record's header values when known;
        they choose the path without parsing, and must agree with the body.

        Raises an :class:`EnvelopeDecodeError` with a ``code`` and a ``reason``:
        ``EnvelopeOversize``, ``EnvelopeUndecodable``, ``EnvelopeInvalid``,
        ``UnknownEventType``, ``UnsupportedSchemaVersion``, ``MissingUpcaster`` or
        ``UpcastFailed``.
        """
        if len(value) > MAX_RECORD_BYTES:
            reason = f"record of {len(value)} bytes is over the {MAX_RECORD_BYTES} byte limit"
            raise EnvelopeOversize(reason)
        if event_type is not None and schema_version is not None:
            current = current_version(self.registry, event_type, schema_version)
            if schema_version < current:
                return self._decode_document(value, schema_version, event_type)
            # The headers name the concrete class: validating it directly costs well under
            # half of the union's dispatch. Its literal `event_type` and `schema_version`
            # refuse a body that contradicts the headers, reported by the slow path.
            concrete = envelope_class(self.registry.payload_class(event_type))
            try:
                return concrete.model_validate_json(value)
            except ValidationError as error:
                return self._decode_document(value, schema_version, event_type, error)
        adapter = self._adapter()
        if adapter is None:
            return self._decode_document(value, schema_version, event_type)
        try:
            envelope = adapter.validate_json(value)
        except ValidationError as error:
            return self._decode_document(value, schema_version, event_type, error)
        check_headers(schema_version, event_type, envelope.schema_version, envelope.event_type)
        return envelope

    def _adapter(self) -> TypeAdapter[Envelope[Any]] | None:
        if self._generation != self.registry.generation:
            generation = self.registry.generation
            classes = tuple(envelope_class(cls) for cls in self.registry.payload_classes())
            if not classes:
                return None
            # A tuple of classes known only at run time has no ``X | Y`` spelling.
            union: Any = Annotated[Union[classes], Field(discriminator="event_type")]  # noqa: UP007
            self._union = TypeAdapter(union)
            self._generation = generation
        return self._union

    def _decode_document(
        self,
        value: bytes,
        header_version: int | None,
        header_type: str | None,
        fast_error: ValidationError | None = None,
    ) -> Envelope[Any]:
        try:
            document = load_json_object(value)
        except NotAJsonObjectError as error:
            raise EnvelopeUndecodable(error.reason) from error
        return envelope_from_document(
            self.registry, document, header_version, header_type, fast_error
        )
