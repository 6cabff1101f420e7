"""Which payload class is the current shape of each event type, and how old shapes upcast.

A registry is an instance, so tests can build their own; :data:`EVENT_REGISTRY` is the
production one, filled when ``awooop.contracts.events.payloads`` is imported. Adding an event
type is adding one decorated class; adding a version is moving the class to the new
version and registering the upcaster from the previous one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from awooop.contracts.records.decode_errors import UnknownEventType
from awooop.contracts.records.envelope import EVENT_TYPE_PATTERN, EventPayload
from awooop.contracts.records.upcasting import PayloadDict, Upcaster, UpcasterTable

P = TypeVar("P", bound=type[EventPayload])
U = TypeVar("U", bound=Upcaster)


class DuplicateEventTypeError(ValueError):
    """An event type or a payload class is registered twice."""


class EventTypeRegistry:
    """Payload classes by event type, and the upcasters of their older versions.

    ``generation`` changes on every registration, so caches built over the registry
    (the codec's union) know when to rebuild.
    """

    def __init__(self) -> None:
        self._payloads: dict[str, type[EventPayload]] = {}
        self._upcasters = UpcasterTable()
        self.generation = 0

    def register_payload(self, event_type: str, version: int) -> Callable[[P], P]:
        """Class decorator: make the class the current payload of ``event_type``.

        Sets the class's ``event_type`` and ``schema_version``. Raises ``ValueError`` for a
        malformed event type or a version below 1, and :class:`DuplicateEventTypeError` when
        the type already has a class or the class is already registered.
        """
        if re.fullmatch(EVENT_TYPE_PATTERN, event_type) is None:
            msg = f"malformed event type {event_type!r}: dotted, lowercase, past tense"
            raise ValueError(msg)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            msg = f"schema version must be an int >= 1, got {version!r}"
            raise ValueError(msg)

        def decorate(cls: P) -> P:
            if event_type in self._payloads:
                msg = f"event type {event_type!r} already has a payload class"
                raise DuplicateEventTypeError(msg)
            if "event_type" in cls.__dict__:
                msg = f"{cls.__name__} is already registered as {cls.event_type!r}"
                raise DuplicateEventTypeError(msg)
            cls.event_type = event_type
            cls.schema_version = version
            self._payloads[event_type] = cls
            self.generation += 1
            return cls

        return decorate

    def register_upcaster(self, event_type: str, from_version: int) -> Callable[[U], U]:
        """Function decorator: the upcaster of ``event_type`` from ``from_version``.

        The function gets the payload object at ``from_version`` and returns it at
        ``from_version + 1``. Raises ``DuplicateUpcasterError`` for a second one of a link.
        """

        def decorate(fn: U) -> U:
            self._upcasters.add(event_type, from_version, fn)
            self.generation += 1
            return fn

        return decorate

    def payload_class(self, event_type: str) -> type[EventPayload]:
        """Return the current payload class; :class:`UnknownEventType` when unregistered."""
        try:
            return self._payloads[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def payload_classes(self) -> tuple[type[EventPayload], ...]:
        """Every registered payload class, in registration order."""
        return tuple(self._payloads.values())

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._payloads

    def upcast(self, event_type: str, from_version: int, payload: PayloadDict) -> PayloadDict:
        """Lift ``payload`` from ``from_version`` to the type's current version.

        Raises ``UnknownEventType``, ``MissingUpcaster`` or ``UpcastFailed``.
        """
        current = self.payload_class(event_type).schema_version
        return self._upcasters.upcast(event_type, from_version, current, payload)

    def missing_upcasters(self) -> list[tuple[str, int]]:
        """Every (event type, from version) link the chains to current versions lack."""
        currents = [(name, cls.schema_version) for name, cls in self._payloads.items()]
        return self._upcasters.missing(currents)


EVENT_REGISTRY = EventTypeRegistry()
"""The production registry: the event types AwoooP services publish."""

register_payload = EVENT_REGISTRY.register_payload
"""Register a payload class in the production registry (see ``register_payload``)."""

register_upcaster = EVENT_REGISTRY.register_upcaster
"""Register an upcaster in the production registry (see ``register_upcaster``)."""
