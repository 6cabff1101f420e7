"""The delivery retry policy under a fake clock, and how provider answers feed it.

Given scripted provider answers, then the waits taken, the calls made and the outcome:
429s wait their ``retry_after``, 5xx and timeouts back off exponentially to a cap, and
nothing waits past ``deliver_before``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from awooop.infra.settings import SettingsError
from awooop.ingress.outbound.providers import ChatApis, slack_result, telegram_result
from awooop.ingress.outbound.rendering import ProviderCall
from awooop.ingress.outbound.retry import (
    CallResult,
    Delivered,
    DeliveryOutcome,
    RateLimited,
    Refused,
    RetryPolicy,
    Unanswered,
    Unavailable,
    deliver,
)
from awooop.ingress.outbound.settings import OutboundSettings, outbound_settings

pytestmark = pytest.mark.unit

START = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
CALL = ProviderCall("sendMessage", {"chat_id": "-5", "text": "hi"})


class FakeTime:
    """A clock that moves only when slept on, or when a call takes its time."""

    def __init__(self) -> None:
        self.now = START
        self.waits: list[float] = []

    def clock(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


class ScriptedProvider:
    """Answers each call with the next scripted result; records the calls' timeouts."""

    def __init__(self, time: FakeTime, answers: Sequence[CallResult], takes: float = 0.0):
        self._time = time
        self._answers = list(answers)
        self._takes = takes
        self.timeouts: list[float] = []

    async def __call__(self, call: ProviderCall, seconds: float) -> CallResult:
        self.timeouts.append(seconds)
        self._time.now += dt.timedelta(seconds=self._takes)
        return self._answers.pop(0)


async def run(
    answers: Sequence[CallResult],
    *,
    seconds_left: float = 600,
    parts: int = 1,
    call_timeout: float = 10,
    takes: float = 0.0,
) -> tuple[DeliveryOutcome, FakeTime, ScriptedProvider]:
    time = FakeTime()
    provider = ScriptedProvider(time, answers, takes)
    outcome = await deliver(
        [CALL] * parts,
        provider,
        deliver_before=START + dt.timedelta(seconds=seconds_left),
        clock=time.clock,
        sleep=time.sleep,
        call_timeout=call_timeout,
    )
    return outcome, time, provider


async def test_a_first_call_that_delivers_is_sent_with_its_id_and_one_attempt() -> None:
    outcome, time, _ = await run([Delivered("17")])
    assert outcome == DeliveryOutcome("sent", ("17",), 1)
    assert time.waits == []


async def test_a_429_waits_the_providers_retry_after_then_calls_again() -> None:
    outcome, time, _ = await run([RateLimited(3, "HTTP 429"), Delivered("17")])
    assert outcome == DeliveryOutcome("sent", ("17",), 2)
    assert time.waits == [3.0]


async def test_a_429_without_retry_after_backs_off_like_an_outage() -> None:
    _, time, _ = await run([RateLimited(None, "HTTP 429"), Delivered("17")])
    assert time.waits == [0.5]


async def test_5xx_and_timeouts_back_off_exponentially_up_to_the_cap() -> None:
    answers: list[CallResult] = [Unavailable("HTTP 502")] * 7 + [Delivered("17")]
    outcome, time, _ = await run(answers)
    assert time.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert (outcome.status, outcome.attempts) == ("sent", 8)


async def test_a_backoff_that_would_reach_deliver_before_ends_it_unavailable() -> None:
    outcome, time, _ = await run([Unavailable("HTTP 503: down")] * 5, seconds_left=3)
    assert time.waits == [0.5, 1.0]  # a third wait of 2 s would end at 3.5 s
    assert (outcome.status, outcome.code, outcome.attempts) == (
        "failed",
        "E-DELIVERY-UNAVAILABLE",
        3,
    )
    assert outcome.reason is not None
    assert outcome.reason.startswith("HTTP 503: down; a retry in 2 s would pass deliver_before")


async def test_a_retry_after_past_deliver_before_is_not_waited_for() -> None:
    outcome, time, _ = await run([RateLimited(30, "HTTP 429")], seconds_left=20)
    assert time.waits == []
    assert (outcome.status, outcome.code, outcome.attempts) == (
        "failed",
        "E-DELIVERY-UNAVAILABLE",
        1,
    )


async def test_a_refusal_fails_at_once_with_the_providers_reason() -> None:
    outcome, time, _ = await run([Refused("HTTP 403: Forbidden: bot was blocked by the user")])
    assert outcome == DeliveryOutcome(
        "failed", (), 1, "E-DELIVERY-REFUSED", "HTTP 403: Forbidden: bot was blocked by the user"
    )
    assert time.waits == []


async def test_an_unreadable_answer_is_never_retried() -> None:
    outcome, _, _ = await run([Unanswered("HTTP 200 without a JSON answer")])
    assert (outcome.status, outcome.code, outcome.attempts) == ("failed", "E-DELIVERY-UNKNOWN", 1)


async def test_a_deadline_already_passed_expires_it_without_a_call() -> None:
    outcome, _, provider = await run([Delivered("17")], seconds_left=0)
    assert (outcome.status, outcome.code, outcome.attempts) == ("expired", "E-DELIVERY-EXPIRED", 0)
    assert provider.timeouts == []


async def test_a_later_part_refused_keeps_the_ids_of_the_parts_posted() -> None:
    outcome, _, _ = await run([Delivered("17"), Refused("HTTP 400: Bad Request")], parts=3)
    assert outcome.status == "failed"
    assert outcome.provider_message_ids == ("17",)
    assert outcome.attempts == 2


async def test_every_part_has_its_own_backoff_and_ids_come_in_order() -> None:
    answers: list[CallResult] = [
        Unavailable("a"),
        Delivered("17"),
        Unavailable("b"),
        Delivered("18"),
    ]
    outcome, time, _ = await run(answers, parts=2)
    assert time.waits == [0.5, 0.5]
    assert outcome == DeliveryOutcome("sent", ("17", "18"), 4)


async def test_a_call_never_waits_longer_than_what_is_left_before_the_deadline() -> None:
    _, _, provider = await run([Unavailable("timeout"), Delivered("1")], seconds_left=4, takes=1)
    assert provider.timeouts == [4.0, 2.5]  # after a 1 s call and a 0.5 s backoff


def test_the_policy_caps_its_backoff() -> None:
    policy = RetryPolicy(first=0.25, cap=1.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]


# Provider answers, classified


def test_telegram_answers_are_classified_by_status_and_body() -> None:
    too_many = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1"}
    assert telegram_result(429, too_many | {"parameters": {"retry_after": 1}}, None) == (
        RateLimited(1.0, "HTTP 429: Too Many Requests: retry after 1")
    )
    forbidden = {"ok": False, "description": "Forbidden: bot was blocked by the user"}
    assert telegram_result(403, forbidden, None) == Refused(
        "HTTP 403: Forbidden: bot was blocked by the user"
    )
    assert telegram_result(500, None, None) == Unavailable("HTTP 500: no description")
    sent = {"ok": True, "result": {"message_id": 17, "text": "hi"}}
    assert telegram_result(200, sent, None) == Delivered("17")
    assert telegram_result(200, None, None) == Unanswered("HTTP 200 without a JSON answer")


def test_an_edit_telegram_finds_already_done_counts_as_delivered() -> None:
    same = {"ok": False, "description": "Bad Request: message is not modified: specified new"}
    assert telegram_result(400, same, "9") == Delivered("9")
    assert isinstance(telegram_result(400, same, None), Refused)


def test_slack_answers_are_classified_by_status_header_and_error() -> None:
    assert slack_result(429, {"Retry-After": "2"}, {"ok": False, "error": "ratelimited"}) == (
        RateLimited(2.0, "HTTP 429: ratelimited")
    )
    assert slack_result(200, {}, {"ok": False, "error": "channel_not_found"}) == Refused(
        "ok false: channel_not_found"
    )
    assert slack_result(200, {}, {"ok": False, "error": "internal_error"}) == Unavailable(
        "ok false: internal_error"
    )
    assert slack_result(503, {}, None) == Unavailable("HTTP 503: no error code")
    assert slack_result(200, {}, {"ok": True, "ts": "1712.000100"}) == Delivered("1712.000100")


def settings() -> OutboundSettings:
    return OutboundSettings("http://telegram.test", "http://slack.test/api", 5.0)


async def send_through(handler: Any, channel: Any = "telegram") -> CallResult:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        send = ChatApis(client, settings()).sender(channel, "123:SECRET")
        return await send(CALL, 5.0)


async def test_a_token_is_never_part_of_a_reason() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/bot123:SECRET/sendMessage"
        return httpx.Response(404, json={"ok": False, "description": f"no {request.url.path}"})

    refused = await send_through(echo)
    assert refused == Refused("HTTP 404: no /bot***/sendMessage")

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    assert await send_through(unreachable) == Unavailable("no connection within 5 s (ConnectError)")


async def test_a_call_that_may_have_reached_the_provider_is_never_made_again() -> None:
    """Neither provider takes an idempotency key: once the request left, a lost answer
    leaves the delivery unknown (never re-sent), while a refused connection is retried."""

    def lost_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    assert await send_through(lost_answer) == Unanswered("sent, then no answer (ReadTimeout)")

    def refused_connection(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("no connection", request=request)

    assert isinstance(await send_through(refused_connection), Unavailable)


async def test_slack_calls_carry_the_token_as_a_bearer_and_the_body_as_json() -> None:
    seen: list[httpx.Request] = []

    def slack_api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "ts": "1712.000100"})

    assert await send_through(slack_api, "slack") == Delivered("1712.000100")
    (request,) = seen
    assert str(request.url) == "http://slack.test/api/sendMessage"
    assert request.headers["authorization"] == "Bearer 123:SECRET"
    assert json.loads(request.content) == CALL.body


# Settings


def test_settings_default_to_the_public_apis_and_read_the_environment() -> None:
    assert outbound_settings({}) == OutboundSettings(
        "https://api.telegram.org", "https://slack.com/api", 10.0, None
    )
    chosen = outbound_settings(
        {
            "AWOOOP_TELEGRAM_API_URL": "http://127.0.0.1:8090/",
            "AWOOOP_SLACK_API_URL": "http://127.0.0.1:8090/api",
            "AWOOOP_OUTBOUND_TIMEOUT_SECONDS": "2.5",
            "AWOOOP_SECRETS_ROOT": "/run/secrets",
        }
    )
    assert chosen.telegram_api_url == "http://127.0.0.1:8090"
    assert chosen.slack_api_url == "http://127.0.0.1:8090/api"
    assert chosen.timeout_seconds == 2.5
    assert str(chosen.secrets_root) == "/run/secrets"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWOOOP_OUTBOUND_TIMEOUT_SECONDS", "0"),
        ("AWOOOP_OUTBOUND_TIMEOUT_SECONDS", "ten"),
        ("AWOOOP_TELEGRAM_API_URL", "api.telegram.org"),
    ],
)
def test_a_malformed_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        outbound_settings({name: value})
