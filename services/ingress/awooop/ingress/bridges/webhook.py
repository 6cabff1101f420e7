"""The path every webhook request takes once its route knows how to read it.

A route hands over ``decide``: read and verify the body, say what it carries. This module
dates the request, starts (or continues) its W3C trace, frames the record, has it
delivered, and turns each refusal into its status: 401 unverified, 400 malformed, 413 too
large, 503 not acknowledged in time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from awooop.contracts.records.headers import trace_id_of
from awooop.infra.logging import bind_context, get_logger
from awooop.ingress.bridges.delivery import Delivery, NotAcknowledged
from awooop.ingress.bridges.framing import BadRequest, Inbound, frame_record, traceparent_for
from awooop.ingress.bridges.signatures import SignatureRefused
from awooop.ingress.bridges.slack import RETRY_HEADER, Challenge, Ignored

log = get_logger(__name__)

OUTCOME_HEADER = "x-awooop-outcome"
"""On a 200: ``produced``, ``already-produced`` (a Slack retry found in the cache) or
``ignored`` (a verified request of a kind the bridges do not produce)."""

Outcome = Inbound | Challenge | Ignored
Decide = Callable[[], Awaitable[Outcome]]


class WebhookAnswerer:
    """Answers the webhook requests of one project's bridge."""

    def __init__(
        self,
        project_id: str,
        delivery: Delivery,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._project_id = project_id
        self._delivery = delivery
        self._clock = clock

    async def answer(self, request: Request, decide: Decide, *, cached: bool) -> Response:
        """Answer ``request``, whose content ``decide`` reads. ``cached``: the provider
        retries this route, so a marked retry may be answered from the produced cache and
        a produced id is remembered."""
        arrived = asyncio.get_running_loop().time()
        received_at = self._clock()
        traceparent = traceparent_for(request.headers.get("traceparent"))
        with bind_context(project_id=self._project_id, trace_id=trace_id_of(traceparent)):
            try:
                outcome = await decide()
                if isinstance(outcome, Challenge):
                    return JSONResponse({"challenge": outcome.value})
                if isinstance(outcome, Ignored):
                    log.debug("bridge_ignored", reason=outcome.reason)
                    return _ok("ignored")
                key, value = frame_record(
                    self._project_id, outcome, received_at=received_at, traceparent=traceparent
                )
                delivered = await self._delivery.deliver(
                    outcome,
                    key,
                    value,
                    arrived=arrived,
                    cached=cached,
                    retry=cached and RETRY_HEADER in request.headers,
                )
            except (SignatureRefused, BadRequest) as refused:
                status = refused.status if isinstance(refused, BadRequest) else 401
                path = request.url.path
                log.info("bridge_refused", status=status, path=path, reason=refused.reason)
                return error_response(status, refused.reason)
            except NotAcknowledged as unacknowledged:
                return error_response(503, unacknowledged.reason)
        remember = None
        if delivered.remember is not None:
            remember = BackgroundTask(self._delivery.remember, delivered.remember)
        return _ok(delivered.outcome, remember)


def error_response(status: int, reason: str) -> Response:
    """A refusal: ``{"error": reason}`` with ``status``."""
    return JSONResponse({"error": reason}, status_code=status)


def _ok(outcome: str, background: BackgroundTask | None = None) -> Response:
    # An empty body: Slack reads a non-empty answer to some interactions as a reply.
    return Response(status_code=200, headers={OUTCOME_HEADER: outcome}, background=background)
