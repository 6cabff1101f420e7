"""Turning Ctrl-C and SIGTERM into a flag the supervising verbs wait on."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class StopSignals:
    """Within the block, SIGINT and SIGTERM set a flag instead of interrupting.

    Installed before the stack starts, so a Ctrl-C during start-up still
    lets the started pieces be stopped cleanly afterwards.
    """

    watched = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received = threading.Event()
        self.name = ""
        self._previous: dict[signal.Signals, Any] = {}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.name = signal.Signals(signum).name
        self.received.set()

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self.watched}
        return self

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def wait(self) -> None:
        """Block until one of the watched signals arrives."""
        # A short timeout keeps the main thread returning to the interpreter,
        # where the signal handler runs.
        while not self.received.wait(0.5):
            pass
