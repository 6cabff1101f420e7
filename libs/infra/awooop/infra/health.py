"""`/healthz` and `/readyz` for a service process, backed by its `Readiness`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from awooop.infra.readiness import Readiness


def health_app(
    service: str, readiness: Readiness, registry: CollectorRegistry | None = None
) -> FastAPI:
    """A tiny ASGI app: `/healthz` answers while the process lives; `/readyz` is 503 with
    the reasons while an outage, a broker reset or start-up holds the process back;
    `/metrics` serves `registry` in the Prometheus text format (when given)."""
    app = FastAPI(title=f"awooop {service}", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if readiness.ready:
            return JSONResponse({"ready": True, "service": service})
        reasons = readiness.reasons or {"starting": "not started yet"}
        return JSONResponse({"ready": False, "service": service, "reasons": reasons}, 503)

    if registry is not None:

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
