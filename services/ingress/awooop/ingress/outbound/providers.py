"""The Telegram Bot API and the Slack Web API over one shared ``httpx.AsyncClient``.

Each call's answer is classified for the retry policy (:mod:`.retry`). Reasons quote
the provider's description or error code, never the message text; the bot token is in
a Telegram URL and a Slack header only, and is scrubbed from any reason that would
echo it.

Two answers are read more kindly than their status: Telegram's "message is not
modified" to an edit means the message already says what the edit asks, so the edit
counts as delivered; Slack's transient ``ok: false`` errors (``internal_error``,
``fatal_error``, ``service_unavailable``, ``request_timeout``, ``ratelimited``) are
retried like a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from awooop.contracts.events.payloads.fields import ChannelType
from awooop.ingress.outbound.rendering import ProviderCall
from awooop.ingress.outbound.retry import (
    CallResult,
    Delivered,
    RateLimited,
    Refused,
    Send,
    Unanswered,
    Unavailable,
)
from awooop.ingress.outbound.settings import OutboundSettings

_SLACK_TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
_NOT_MODIFIED = "message is not modified"


def quiet_http_logs() -> None:
    """Keep httpx's per-request lines off: a Telegram request line names the bot token."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class ChatApis:
    """Sends provider calls with a bot token, each through the shared client."""

    def __init__(self, client: httpx.AsyncClient, settings: OutboundSettings) -> None:
        self._client = client
        self._settings = settings

    def sender(self, channel_type: ChannelType, token: str) -> Send:
        """The `Send` of one delivery: its calls go to `channel_type` with `token`."""

        async def send(call: ProviderCall, seconds: float) -> CallResult:
            if channel_type == "telegram":
                url = f"{self._settings.telegram_api_url}/bot{token}/{call.method}"
                headers: dict[str, str] = {}
            else:
                url = f"{self._settings.slack_api_url}/{call.method}"
                headers = {"Authorization": f"Bearer {token}"}
            answer = await self._post(url, call.body, headers, seconds)
            if not isinstance(answer, httpx.Response):
                return answer
            body = _json_of(answer)
            if channel_type == "telegram":
                result = telegram_result(answer.status_code, body, call.edits)
            else:
                result = slack_result(answer.status_code, answer.headers, body)
            return _scrubbed(result, token)

        return send

    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str], seconds: float
    ) -> httpx.Response | CallResult:
        # The error's own text may carry the URL, and with it a Telegram token: only its
        # type is reported. Neither provider takes an idempotency key, so a call that may
        # have reached it (sent, then no answer) is never made again; one that never
        # left (no connection) is.
        try:
            return await self._client.post(url, json=body, headers=headers, timeout=seconds)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            return Unavailable(f"no connection within {seconds:.3g} s ({type(error).__name__})")
        except httpx.TransportError as error:
            return Unanswered(f"sent, then no answer ({type(error).__name__})")


def telegram_result(status: int, body: dict[str, Any] | None, edits: str | None) -> CallResult:
    """A Bot API answer as the retry policy sees it."""
    description = str((body or {}).get("description") or "no description")
    if status == 429:
        parameters = (body or {}).get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        return RateLimited(_seconds(retry_after), f"HTTP 429: {description}")
    if status >= 500:
        return Unavailable(f"HTTP {status}: {description}")
    if edits is not None and _NOT_MODIFIED in description:
        return Delivered(edits)
    if status >= 400:
        return Refused(f"HTTP {status}: {description}")
    if body is None:
        return Unanswered(f"HTTP {status} without a JSON answer")
    if body.get("ok") is not True:
        return Refused(f"HTTP {status}, ok false: {description}")
    result = body.get("result")
    message_id = result.get("message_id") if isinstance(result, dict) else edits
    if message_id is None:
        return Unanswered(f"HTTP {status}, ok true, without a message_id")
    return Delivered(str(message_id))


def slack_result(
    status: int, headers: httpx.Headers | dict[str, str], body: dict[str, Any] | None
) -> CallResult:
    """A Web API answer as the retry policy sees it."""
    error = str((body or {}).get("error") or "no error code")
    if status == 429:
        return RateLimited(_seconds(headers.get("Retry-After")), f"HTTP 429: {error}")
    if status >= 500:
        return Unavailable(f"HTTP {status}: {error}")
    if status >= 400:
        return Refused(f"HTTP {status}: {error}")
    if body is None:
        return Unanswered(f"HTTP {status} without a JSON answer")
    if body.get("ok") is not True:
        if error in _SLACK_TRANSIENT:
            return Unavailable(f"ok false: {error}")
        return Refused(f"ok false: {error}")
    ts = body.get("ts")
    if not isinstance(ts, str) or not ts:
        return Unanswered(f"HTTP {status}, ok true, without a ts")
    return Delivered(ts)


def _json_of(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


def _scrubbed(result: CallResult, token: str) -> CallResult:
    if isinstance(result, Delivered) or token not in result.reason:
        return result
    reason = result.reason.replace(token, "***")
    if isinstance(result, RateLimited):
        return RateLimited(result.retry_after, reason)
    return type(result)(reason)
