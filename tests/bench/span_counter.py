"""A count read at the measured span's start and end, the shape the bench's broker counts
share (`broker_writes.py`, `kafka_requests.py`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

Snapshot = TypeVar("Snapshot")


class Reported(Protocol):
    missing: str | None
    """Why nothing was counted, else None."""


class SpanCounter(ABC, Generic[Snapshot]):
    """`start()` and `stop()` each read a snapshot (`_read`: None when it cannot, with
    the reason left in `figures.missing`); `stop()` hands both to `_count`. Once a reason
    is set, nothing more is read, and the figure is reported as not measured."""

    figures: Reported
    _start: Snapshot | None = None

    def start(self) -> None:
        if self.figures.missing is None:
            self._start = self._read()

    def stop(self) -> None:
        if self.figures.missing is not None or self._start is None:
            return
        end = self._read()
        if end is not None:
            self._count(self._start, end)

    @abstractmethod
    def _read(self) -> Snapshot | None:
        """A snapshot now, or None with the reason set in `figures.missing`."""

    @abstractmethod
    def _count(self, start: Snapshot, end: Snapshot) -> None:
        """Put what happened between the two snapshots into `figures`."""
