"""A service process with a planted failure, for the crash tests: `python crashing_service.py
MODE TRIGGER`. It runs through the platform's own entry point (`service_main.run`).

* `background`: a background job that raises once the file TRIGGER exists;
* `consumer`: a processor whose decoder has a bug (AttributeError) for records of the
  project named TRIGGER, so the exception escapes the consumer's batch loop;
* `plain`: a service named TRIGGER with nothing planted (start-up refusals).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from awooop.contracts.registries.topics import Topics
from awooop.infra.handler_table import HandlerContext, HandlerTable
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run

SERVICE = "crash_probe"


def background_spec(trigger: Path) -> ServiceSpec:
    async def planted(_runner: ServiceRunner) -> None:
        # A file polled from another process's test: no event could carry it.
        while not trigger.exists():  # noqa: ASYNC240, ASYNC110
            await asyncio.sleep(0.05)
        raise RuntimeError("planted failure in a background job")

    return ServiceSpec(service=SERVICE, relay=False, background=[planted])


class BuggyDecoder(HandlerTable):
    def __init__(self, project: str) -> None:
        async def ignore(_ctx: HandlerContext, _env: Any) -> None:
            return None

        super().__init__(SERVICE, {"run.completed": ignore})
        self._project = project

    def decode(self, record: RawRecord) -> DecodedRecord:
        if record.header("project_id") == self._project:
            raise AttributeError("planted bug in a decoder")
        return super().decode(record)


def consumer_spec(project: str) -> ServiceSpec:
    return ServiceSpec(
        service=SERVICE,
        topics=(Topics.RUN_EVENTS.name,),
        processor=lambda _runner: BuggyDecoder(project),
        relay=False,
        group=f"awooop.crash_probe.{project}",
    )


if __name__ == "__main__":
    mode, trigger = sys.argv[1], sys.argv[2]
    if mode == "plain":
        run(ServiceSpec(service=trigger, relay=False))
    run(background_spec(Path(trigger)) if mode == "background" else consumer_spec(trigger))
