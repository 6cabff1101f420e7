"""The retry policy of one delivery, and the loop that follows it through its calls.

Pure: the provider call, the clock and the sleep are handed in, so the whole policy runs
under a fake clock in tests. Every call must start before the message's
``deliver_before``, and no wait may reach it:

- a 429 waits the ``retry_after`` the provider named (capped exponential backoff when
  it named none), then calls again;
- a 5xx, a timeout or a failed connection waits a capped exponential backoff
  (:class:`RetryPolicy`), then calls again;
- a wait that would reach ``deliver_before`` ends the delivery ``failed`` with
  ``E-DELIVERY-UNAVAILABLE``; a deadline passed before the first call, ``expired``;
- any other refusal (a 4xx, Telegram's or Slack's ``ok: false``) ends it ``failed``
  with ``E-DELIVERY-REFUSED`` at once, and an answer that leaves unknown whether the
  message was posted ends it with ``E-DELIVERY-UNKNOWN``: never re-sent.

``attempts`` counts calls made. The ids of the parts already posted stay in the outcome
whatever ends the delivery.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from awooop.contracts.events.payloads.channel import DeliveryStatus
from awooop.contracts.registries.errors import (
    E_DELIVERY_EXPIRED,
    E_DELIVERY_REFUSED,
    E_DELIVERY_UNAVAILABLE,
    E_DELIVERY_UNKNOWN,
)
from awooop.ingress.outbound.rendering import ProviderCall


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider posted (or rewrote) the message: its id there."""

    message_id: str


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A 429: call again after ``retry_after`` seconds (None: the provider named none)."""

    retry_after: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A 5xx, a timeout or a connection failure: call again after a backoff."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The provider refused the call for good."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unanswered:
    """An answer that does not say whether the message was posted: never call again."""

    reason: str


CallResult = Delivered | RateLimited | Unavailable | Refused | Unanswered

Send = Callable[[ProviderCall, float], Awaitable[CallResult]]
"""Makes one call within the given timeout (seconds) and classifies its answer."""
Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What became of a delivery: the fields of its ``channel.delivery_reported``."""

    status: DeliveryStatus
    provider_message_ids: tuple[str, ...] = ()
    attempts: int = 0
    code: str | None = None
    reason: str | None = None


def failed(code: str, reason: str, ids: Sequence[str] = (), attempts: int = 0) -> DeliveryOutcome:
    return DeliveryOutcome("failed", tuple(ids), attempts, code, reason)


def expired(deliver_before: dt.datetime) -> DeliveryOutcome:
    reason = f"deliver_before {deliver_before.isoformat()} passed before delivery began"
    return DeliveryOutcome("expired", (), 0, E_DELIVERY_EXPIRED.code, reason)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff of the n-th failure in a row of one call: ``first`` doubled up to ``cap``."""

    first: float = 0.5
    cap: float = 8.0

    def backoff(self, failures: int) -> float:
        return float(min(self.first * 2 ** max(failures - 1, 0), self.cap))

    def wait(self, result: RateLimited | Unavailable, failures: int) -> float:
        """Seconds to wait before calling again after `failures` failures in a row."""
        if isinstance(result, RateLimited) and result.retry_after is not None:
            return max(result.retry_after, 0.0)
        return self.backoff(failures)


DEFAULT_POLICY = RetryPolicy()


async def deliver(
    calls: Sequence[ProviderCall],
    send: Send,
    *,
    deliver_before: dt.datetime,
    clock: Clock,
    sleep: Sleep,
    call_timeout: float,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> DeliveryOutcome:
    """Make `calls` in order, each retried by `policy` until `deliver_before`."""
    ids: list[str] = []
    attempts = 0
    for number, call in enumerate(calls, start=1):
        failures = 0
        while True:
            left = (deliver_before - clock()).total_seconds()
            if left <= 0:
                if attempts == 0:
                    return expired(deliver_before)
                reason = f"deliver_before passed before part {number} of {len(calls)}"
                return failed(E_DELIVERY_UNAVAILABLE.code, reason, ids, attempts)
            attempts += 1
            result = await send(call, min(call_timeout, left))
            if isinstance(result, Delivered):
                ids.append(result.message_id)
                break
            if isinstance(result, Refused):
                return failed(E_DELIVERY_REFUSED.code, result.reason, ids, attempts)
            if isinstance(result, Unanswered):
                return failed(E_DELIVERY_UNKNOWN.code, result.reason, ids, attempts)
            failures += 1
            wait = policy.wait(result, failures)
            if clock() + dt.timedelta(seconds=wait) >= deliver_before:
                reason = (
                    f"{result.reason}; a retry in {wait:g} s would pass deliver_before "
                    f"{deliver_before.isoformat()}"
                )
                return failed(E_DELIVERY_UNAVAILABLE.code, reason, ids, attempts)
            await sleep(wait)
    return DeliveryOutcome("sent", tuple(ids), attempts)
