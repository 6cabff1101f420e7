"""Upcasters: functions that lift a payload of one version to the next.

A published payload shape is never edited in place. A new version comes with an upcaster
from the previous one, and readers lift every old payload through the chain of upcasters,
in order, up to the current version; they never reject an old version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from awooop.contracts.records.decode_errors import MissingUpcaster, UpcastFailed

PayloadDict = dict[str, Any]
Upcaster = Callable[[PayloadDict], PayloadDict]
"""Maps a payload object of version ``v`` to the same payload at version ``v + 1``."""

U = TypeVar("U", bound=Upcaster)


class DuplicateUpcasterError(ValueError):
    """A second upcaster for the same (event type, from version) link."""


class UpcasterTable:
    """Upcasters keyed by (event type, from version)."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, int], Upcaster] = {}

    def add(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` as the link ``from_version -> from_version + 1`` of the type.

        Raises ``ValueError`` for a version below 1 and :class:`DuplicateUpcasterError` for a
        link that already has an upcaster.
        """
        if isinstance(from_version, bool) or from_version < 1:
            msg = f"from_version must be an int >= 1, got {from_version!r}"
            raise ValueError(msg)
        key = (event_type, from_version)
        if key in self._links:
            msg = f"{event_type} already has an upcaster from version {from_version}"
            raise DuplicateUpcasterError(msg)
        self._links[key] = fn

    def upcast(
        self, event_type: str, from_version: int, to_version: int, payload: PayloadDict
    ) -> PayloadDict:
        """Lift ``payload`` from ``from_version`` to ``to_version``, one link at a time.

        Raises :class:`MissingUpcaster` for a missing link and :class:`UpcastFailed` when an
        upcaster raises or returns something other than a dict.
        """
        version = from_version
        while version < to_version:
            fn = self._links.get((event_type, version))
            if fn is None:
                raise MissingUpcaster(event_type, version)
            try:
                payload = fn(payload)
            except Exception as exc:
                reason = f"upcaster {event_type} v{version}->v{version + 1} raised {exc!r}"
                raise UpcastFailed(reason) from exc
            if not isinstance(payload, dict):
                reason = f"upcaster {event_type} v{version} returned {type(payload).__name__}"
                raise UpcastFailed(reason)
            version += 1
        return payload

    def missing(self, current_versions: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """The links lacking from the chains up to each (event type, current version)."""
        return [
            (event_type, version)
            for event_type, current in current_versions
            for version in range(1, current)
            if (event_type, version) not in self._links
        ]
