"""`AWOOOP_EVENT_LOOP` chooses a service process's event loop; an unknown one stops the
process at start with one line naming the variable."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from awooop.infra import service_main
from awooop.infra.runner import ServiceSpec

pytestmark = pytest.mark.unit

SPEC = ServiceSpec(service="ingress", topics=())


@pytest.mark.parametrize(("value", "on_uvloop"), [("", True), ("uvloop", True), ("asyncio", False)])
def test_the_service_runs_on_the_loop_named(
    monkeypatch: pytest.MonkeyPatch, value: str, on_uvloop: bool
) -> None:
    ran_on: list[asyncio.AbstractEventLoop] = []

    async def serve(_spec: ServiceSpec) -> int:
        ran_on.append(asyncio.get_running_loop())
        return 0

    monkeypatch.setenv("AWOOOP_EVENT_LOOP", value)
    monkeypatch.setattr(service_main, "serve", serve)
    service_main.run(SPEC)
    (loop,) = ran_on
    assert isinstance(loop, uvloop.Loop) is on_uvloop
    assert isinstance(loop, asyncio.BaseEventLoop) is not on_uvloop


def test_an_unknown_loop_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWOOOP_EVENT_LOOP", "trio")
    with pytest.raises(SystemExit) as stopped:
        service_main.run(SPEC)
    assert stopped.value.code == service_main.EXIT_NOT_CONFIGURED
    assert capsys.readouterr().err == "AWOOOP_EVENT_LOOP='trio' is not one of uvloop, asyncio\n"
