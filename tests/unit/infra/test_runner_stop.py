"""A service's stop is bounded: a part that never stops is logged by name and left
behind, and a pool whose connections are never released is terminated."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import structlog

from awooop.infra import runner as runner_module
from awooop.infra.runner import ServiceRunner, ServiceSpec, StopLeftBehind
from awooop.infra.settings import Settings

pytestmark = pytest.mark.unit


class _StuckPool:
    def __init__(self) -> None:
        self.terminated = False

    async def close(self) -> None:
        await asyncio.Event().wait()  # a connection is never released

    def terminate(self) -> None:
        self.terminated = True


async def _deaf_to_cancellation(stopped: asyncio.Event) -> None:
    while not stopped.is_set():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # swallows every cancellation: only the deadline ends the wait


async def test_a_part_that_never_stops_cannot_hold_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "STOP_SECONDS", 0.3)
    monkeypatch.setattr(runner_module, "TASK_SECONDS", 0.15)
    settings = Settings.from_env(
        {"AWOOOP_HOME": str(tmp_path), "AWOOOP_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    )
    runner = ServiceRunner(ServiceSpec(service="ingress", topics=()), settings)
    released = asyncio.Event()
    runner._supervise(_deaf_to_cancellation(released), "stubborn")
    pool: Any = _StuckPool()
    runner.pool = pool
    await asyncio.sleep(0)

    # The module's logger itself is replaced: `capture_logs` misses a logger another
    # test's `configure_logging` cached on its first use.
    logs = structlog.testing.CapturingLogger()
    monkeypatch.setattr(runner_module, "log", logs)
    try:
        await asyncio.wait_for(runner.stop(), 10)
        _check_the_stop_left_its_parts_behind(logs, pool)
    except BaseException:
        released.set()  # the stubborn task ends, whatever failed
        raise

    timed_out = [call.kwargs for call in logs.calls if call.args == ("service_stop_timed_out",)]
    assert [(e["part"], e.get("tasks")) for e in timed_out] == [
        ("tasks", ["stubborn"]),
        ("pool", None),
    ]
    assert pool.terminated
    assert runner.left_behind == ["tasks", "pool"]
    # A restart (after a broker recovery) must not start new parts beside the old ones.
    with pytest.raises(StopLeftBehind, match="left tasks, pool behind"):
        await asyncio.wait_for(runner.restart(), 10)
    assert runner.left_behind == ["tasks", "pool"]  # the stop ran once: nothing again
    released.set()
    (stubborn,) = runner._tasks
    stubborn.cancel()
    await asyncio.wait({stubborn}, timeout=5)
    assert stubborn.done()
    # Its end, long after the stop, is not taken for a crash of the service.
    await asyncio.sleep(0)
    assert not runner.failed.is_set()


def _check_the_stop_left_its_parts_behind(
    logs: structlog.testing.CapturingLogger, pool: Any
) -> None:
    timed_out = [call.kwargs for call in logs.calls if call.args == ("service_stop_timed_out",)]
    assert [(e["part"], e.get("tasks")) for e in timed_out] == [
        ("tasks", ["stubborn"]),
        ("pool", None),
    ]
    assert pool.terminated
