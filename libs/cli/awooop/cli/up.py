"""`awooop up`: the embedded stack (or the URLs in the environment), every service as its
own process, and the query API; Ctrl-C stops them, services first."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from awooop.cli.demo_signals import StopSignals
from awooop.cli.dev import bring_up, take_down
from awooop.cli.platform import Platform, PlatformError, start_platform, wait_ready
from awooop.infra.embedded import EmbeddedStack
from awooop.infra.settings import state_dir


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    up = verbs.add_parser("up", help="run the whole platform until Ctrl-C")
    up.add_argument(
        "--fresh", action="store_true", help="start Postgres empty next to a new broker"
    )
    up.set_defaults(handler=run_up)


class StartFailed(Exception):
    """The stack or a process of the platform did not come up; already reported."""


@contextmanager
def running_platform(fresh: bool, stop: StopSignals) -> Iterator[Platform]:
    """The platform, ready, for the duration of the block; everything stopped after."""
    home = state_dir()
    stack = EmbeddedStack(home)
    statuses = bring_up(stack, fresh)
    if statuses is None:
        raise StartFailed
    started_stack = any(status.state == "started" for status in statuses)
    env = {**stack.urls(), "AWOOOP_HOME": str(home)}
    platform = start_platform(env, home)
    try:
        print("starting ingress, runtime, mcp_gateway, approval, projector and the API …")
        try:
            wait_ready(platform)
        except PlatformError as error:
            print(f"the platform did not start: {error}")
            print(f"logs: {platform.logs}")
            raise StartFailed from error
        if stop.received.is_set():
            raise StartFailed
        print(f"platform ready; query API at {platform.api_url} (docs at /docs)")
        print(f"process logs in {platform.logs}")
        os.environ["AWOOOP_API_URL"] = platform.api_url
        yield platform
    finally:
        platform.stop()
        print("services and API stopped")
        if started_stack:
            take_down(stack)


def run_up(args: argparse.Namespace) -> int:
    with StopSignals() as stop:
        try:
            with running_platform(args.fresh, stop):
                print("Ctrl-C stops the platform")
                stop.wait()
                print(f"{stop.name} received")
        except StartFailed:
            return 1
    return 0
