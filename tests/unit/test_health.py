"""Readiness and the health endpoints."""

from __future__ import annotations

import httpx
import pytest

from awooop.infra.health import health_app
from awooop.infra.readiness import Readiness

pytestmark = pytest.mark.unit


def test_readiness_needs_a_start_and_no_reason_held() -> None:
    readiness = Readiness()
    assert not readiness.ready
    readiness.started()
    assert readiness.ready
    readiness.hold("outage", "database unavailable")
    readiness.hold("broker-epoch", "E-BROKER-RESET")
    readiness.release("outage")
    assert not readiness.ready
    assert readiness.reasons == {"broker-epoch": "E-BROKER-RESET"}
    readiness.release("broker-epoch")
    assert readiness.ready


async def test_readyz_is_503_with_reasons_until_ready() -> None:
    readiness = Readiness()
    app = health_app("runtime", readiness)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        assert (await client.get("/healthz")).status_code == 200
        starting = await client.get("/readyz")
        assert starting.status_code == 503
        assert starting.json()["reasons"] == {"starting": "not started yet"}
        readiness.started()
        assert (await client.get("/readyz")).json() == {"ready": True, "service": "runtime"}
        readiness.hold("outage", "connection refused")
        held = await client.get("/readyz")
        assert held.status_code == 503
        assert held.json()["reasons"] == {"outage": "connection refused"}
