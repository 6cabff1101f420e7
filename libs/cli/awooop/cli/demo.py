"""`awooop run-demo`, what `make run` starts.

Until the services are wired end to end (the walking skeleton), the demo
brings up the embedded stack, shows it, and holds it until Ctrl-C (SIGINT)
or SIGTERM. Pieces named by URLs in the environment are external: never
started or stopped here. On the way out it stops the stack when it started
any piece of it, and leaves a stack that was already running as it was.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from awooop.cli.dev import bring_up, export_lines, take_down
from awooop.infra.embedded import EmbeddedStack
from awooop.infra.settings import state_dir

NOT_YET = (
    "services (ingress, runtime, mcp_gateway, approval, projector): not running; "
    "they come with the walking skeleton"
)


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add the `run-demo` verb."""
    demo = verbs.add_parser("run-demo", help="start the embedded stack and hold it until Ctrl-C")
    demo.add_argument(
        "--keep-data",
        action="store_true",
        help="keep Postgres data even when the broker starts fresh (empty)",
    )
    demo.set_defaults(handler=run_demo)


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


def run_demo(args: argparse.Namespace) -> int:
    """`awooop run-demo [--keep-data]`."""
    stack = EmbeddedStack(state_dir())
    with StopSignals() as stop:
        statuses = bring_up(stack, args.keep_data)
        if statuses is None:
            return 1
        for line in export_lines(stack):
            print(line)
        print(NOT_YET)
        started_here = any(status.state == "started" for status in statuses)
        print("the embedded stack is up; Ctrl-C stops it")
        stop.wait()
        print(f"{stop.name} received")
        if not started_here:
            print("run-demo started no piece, so it stops none (`awooop dev down` does)")
            return 0
        return take_down(stack)
