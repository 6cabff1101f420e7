"""Measuring a bridge app against its broker: acknowledged requests per second and the
99th percentile of the time to acknowledgement, for the bench (never asserted on time).

Requests go through ``httpx.ASGITransport`` (no sockets, no uvicorn), so the figures are
the app's and its broker's, not the HTTP server's.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette

from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.signatures import slack_signature


@dataclass(frozen=True)
class LoadReport:
    """What :func:`measure` saw: answers by status, wall time, per-request latencies of
    the acknowledged (200) answers, in seconds."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    ack_latencies: tuple[float, ...]

    @property
    def acknowledged(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def acknowledged_per_second(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    @property
    def ack_p99_ms(self) -> float:
        """The 99th percentile (nearest rank) of the time to a 200, in milliseconds."""
        if not self.ack_latencies:
            return math.nan
        ordered = sorted(self.ack_latencies)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] * 1000


def _bodies(config: BridgeConfig, n: int) -> tuple[str, list[bytes]]:
    """The route and ``n`` distinct valid bodies: Telegram updates to the first bot, else
    Slack event callbacks."""
    run = uuid.uuid4().hex[:12]
    if config.telegram_secrets:
        bot_id = next(iter(config.telegram_secrets))
        base = int(time.time() * 1000) * 1000
        updates = (
            {
                "update_id": base + i,
                "message": {
                    "message_id": i + 1,
                    "date": int(time.time()),
                    "chat": {"id": 4242, "type": "private"},
                    "from": {"id": 4242, "is_bot": False, "first_name": "Load"},
                    "text": f"load {run} {i}",
                },
            }
            for i in range(n)
        )
        return f"/telegram/{bot_id}", [json.dumps(update).encode() for update in updates]
    if config.slack_signing_secret is None:
        raise ValueError("the app serves no channel: configure a bot or a signing secret")
    events = (
        {
            "type": "event_callback",
            "team_id": "T0LOAD",
            "event_id": f"Ev{run}{i:08d}",
            "event": {"type": "message", "user": "U0LOAD", "text": f"load {i}"},
        }
        for i in range(n)
    )
    return "/slack/events", [json.dumps(event).encode() for event in events]


def _headers(config: BridgeConfig, body: bytes) -> dict[str, str]:
    """A valid request's headers, signed now (a long run must not outlive the window)."""
    if config.telegram_secrets:
        return {"x-telegram-bot-api-secret-token": next(iter(config.telegram_secrets.values()))}
    assert config.slack_signing_secret is not None
    stamp = str(int(time.time()))
    signature = slack_signature(config.slack_signing_secret, stamp, body)
    return {"x-slack-request-timestamp": stamp, "x-slack-signature": signature}


async def measure(app: Starlette, n: int, *, concurrency: int = 64) -> LoadReport:
    """Send ``n`` valid requests to ``app`` (built by ``create_bridge_app``, whose
    ``app.state.bridge_config`` names the channel), at most ``concurrency`` at a time."""
    config: BridgeConfig = app.state.bridge_config
    path, bodies = _bodies(config, n)
    limit = asyncio.Semaphore(concurrency)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:

        async def one(body: bytes) -> None:
            async with limit:
                sent = time.perf_counter()
                headers = _headers(config, body)
                response = await client.post(path, content=body, headers=headers)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(one(body) for body in bodies))
        seconds = time.perf_counter() - started
    return LoadReport(n, seconds, dict(statuses), tuple(latencies))
