"""Whether an approved call that failed is tried again, and when.

A failure is **transient** when its cause may pass on its own: a connection refused or
reset, a timeout, an overloaded or unavailable server (HTTP 429, 502, 503, 504, "too
many requests", "service unavailable", "temporarily unavailable"), an I/O error. It is
**permanent** when asking again can only repeat the refusal: not found (404),
forbidden or unauthorized (401, 403), invalid (400), already exists or a conflict
(409), blocked. **Permanent wins** when a failure shows signs of both ("503: not
found"), and so does a failure nothing here recognises: an action that was approved
is never repeated on a guess.

The verdict reads the failure's text and what the transport knew
(`CallFailure.transient`: True or False, None when the failure was the tool's own
error result). Text is compared after folding case, camel case, `_` and `-`, so
"ServiceUnavailable", "SERVICE_UNAVAILABLE" and "service-unavailable" read alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["transient", "permanent"]

MAX_ATTEMPTS = 3
"""An approved call is tried at most three times: the first attempt and two retries."""

TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "connection aborted",
    "connection closed",
    "connection lost",
    "econnrefused",
    "econnreset",
    "broken pipe",
    "timed out",
    "timeout",
    "time out",
    "deadline exceeded",
    "too many requests",
    "rate limited",
    "service unavailable",
    "temporarily unavailable",
    "bad gateway",
    "i/o error",
    "io error",
    "ioerror",
    "input/output error",
)
TRANSIENT_STATUSES = ("429", "502", "503", "504")
PERMANENT_WORDS = (
    "not found",
    "notfound",
    "no such",
    "forbidden",
    "unauthorized",
    "unauthorised",
    "permission denied",
    "invalid",
    "bad request",
    "already exists",
    "conflict",
    "blocked",
)
PERMANENT_STATUSES = ("400", "401", "403", "404", "409")


def _number_pattern(statuses: tuple[str, ...]) -> re.Pattern[str]:
    # A status stands alone: "HTTP 503", "503:", "(404)"; never part of "15030" or "4040ms".
    return re.compile(r"(?<![0-9a-z])(" + "|".join(statuses) + r")(?![0-9])")


_TRANSIENT_NUMBERS = _number_pattern(TRANSIENT_STATUSES)
_PERMANENT_NUMBERS = _number_pattern(PERMANENT_STATUSES)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_\-]+")


def folded(text: str) -> str:
    """`text` in the one spelling the patterns are written in: camel case split, lower
    case, `_`, `-` and runs of white space as one space."""
    return _SEPARATORS.sub(" ", _CAMEL.sub(" ", text)).lower()


@dataclass(frozen=True, slots=True)
class Verdict:
    """A failure's kind and the signs that decided it (for the reason, never a value)."""

    kind: Kind
    transient_signs: tuple[str, ...]
    permanent_signs: tuple[str, ...]


def classify(message: str, transport_transient: bool | None = None) -> Verdict:
    """Transient or permanent, from the failure's `message` and `transport_transient`
    (what the transport concluded; None when it knew nothing). Permanent wins over
    transient, and a failure with no sign at all is permanent."""
    text = folded(message)
    transient = [word for word in TRANSIENT_WORDS if word in text]
    transient.extend(f"status {m}" for m in _TRANSIENT_NUMBERS.findall(text))
    permanent = [word for word in PERMANENT_WORDS if word in text]
    permanent.extend(f"status {m}" for m in _PERMANENT_NUMBERS.findall(text))
    if transport_transient is True:
        transient.append("transport")
    elif transport_transient is False:
        permanent.append("transport")
    kind: Kind = "transient" if transient and not permanent else "permanent"
    return Verdict(kind, tuple(dict.fromkeys(transient)), tuple(dict.fromkeys(permanent)))


def retry_delay(base_seconds: float, attempt: int) -> float:
    """The wait after failed attempt `attempt` (from 1): the base, growing linearly."""
    return base_seconds * attempt


def should_retry(verdict: Verdict, attempt: int, *, seconds_left: float, delay: float) -> bool:
    """Whether failed attempt `attempt` is tried again: a transient failure, an attempt
    left, and the call's deadline not reached before the retry would start."""
    return verdict.kind == "transient" and attempt < MAX_ATTEMPTS and delay < seconds_left


@dataclass(frozen=True, slots=True)
class RetriedAttempt:
    """A failed attempt of an approved call that was tried again: its number (from 1),
    the failure's code and reason (redacted and bounded), the wait before the next
    attempt, the attempt's MCP latency, and when it failed."""

    attempt: int
    code: str
    reason: str
    retry_in: float
    latency_ms: float | None
    at: datetime
