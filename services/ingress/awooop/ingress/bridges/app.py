"""The bridges' ASGI app: verify, frame, produce, and only then acknowledge.

Routes: ``POST /telegram/{bot_id}`` (when bots are configured), ``POST /slack/events`` and
``POST /slack/interactivity`` (when a signing secret is), ``GET /healthz``. A request is
answered 200 only after the broker acknowledged its record; when the acknowledgement has
not arrived ``ack_deadline`` seconds after the request did, the answer is 503 and the
provider retries (the record may still land: ingress de-duplicates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from awooop.contracts.registries.service_names import BRIDGES
from awooop.ingress.bridges import slack, telegram
from awooop.ingress.bridges.body import read_body
from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.delivery import Delivery
from awooop.ingress.bridges.kafka_publisher import Publish
from awooop.ingress.bridges.produced_cache import ProducedIds
from awooop.ingress.bridges.signatures import verify_slack_request, verify_telegram_secret
from awooop.ingress.bridges.webhook import Outcome, WebhookAnswerer, error_response


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_bridge_app(
    config: BridgeConfig,
    publish: Publish,
    *,
    produced: ProducedIds | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> Starlette:
    """The ASGI app of one project's bridge.

    ``publish`` must return only once the broker acknowledged the record
    (:func:`~awooop.ingress.bridges.kafka_publisher.kafka_publish`); ``produced`` is the
    optional cache answering Slack retries early; ``clock`` dates records and checks Slack
    timestamps. The app starts nothing itself: its publisher and cache live as long as
    the caller keeps them. ``app.state.bridge_config`` holds ``config``.
    """
    delivery = Delivery(config.project_id, publish, produced, config.ack_deadline)
    answerer = WebhookAnswerer(config.project_id, delivery, clock)
    routes = _Routes(config, answerer, clock)
    table = [Route("/healthz", routes.healthz, methods=["GET"])]
    if config.telegram_secrets:
        table.append(Route("/telegram/{bot_id}", routes.telegram, methods=["POST"]))
    if config.slack_signing_secret is not None:
        table.append(Route("/slack/events", routes.slack_events, methods=["POST"]))
        table.append(Route("/slack/interactivity", routes.slack_interactivity, methods=["POST"]))
    app = Starlette(routes=table)
    app.state.bridge_config = config
    return app


class _Routes:
    def __init__(
        self, config: BridgeConfig, answerer: WebhookAnswerer, clock: Callable[[], dt.datetime]
    ) -> None:
        self._config = config
        self._answerer = answerer
        self._clock = clock

    async def healthz(self, _request: Request) -> Response:
        body = {"status": "ok", "service": BRIDGES, "project_id": self._config.project_id}
        return JSONResponse(body)

    async def telegram(self, request: Request) -> Response:
        bot_id = request.path_params["bot_id"]
        secret = self._config.telegram_secrets.get(bot_id)
        if secret is None:
            return error_response(404, f"this bridge serves no Telegram bot {bot_id}")

        async def decide() -> Outcome:
            # The token is a header: a forged request is refused before its body is read.
            verify_telegram_secret(secret, request.headers.get(telegram.SECRET_HEADER))
            body = await read_body(request, self._config.max_body_bytes)
            return telegram.telegram_update(bot_id, body)

        return await self._answerer.answer(request, decide, cached=False)

    async def slack_events(self, request: Request) -> Response:
        async def decide() -> Outcome:
            return slack.slack_event(await self._slack_body(request))

        return await self._answerer.answer(request, decide, cached=True)

    async def slack_interactivity(self, request: Request) -> Response:
        async def decide() -> Outcome:
            return slack.slack_interaction(await self._slack_body(request))

        # Slack does not retry interactions: nothing to cache.
        return await self._answerer.answer(request, decide, cached=False)

    async def _slack_body(self, request: Request) -> bytes:
        """The raw body, verified against the signing secret before anything parses it."""
        assert self._config.slack_signing_secret is not None  # the route exists only then
        body = await read_body(request, self._config.max_body_bytes)
        verify_slack_request(
            self._config.slack_signing_secret,
            timestamp=request.headers.get(slack.TIMESTAMP_HEADER),
            signature=request.headers.get(slack.SIGNATURE_HEADER),
            body=body,
            now=self._clock().timestamp(),
        )
        return body
