"""Which failures of an approved call are tried again: transient ones only, permanent
winning whenever a failure shows signs of both, whatever the case or spelling."""

from __future__ import annotations

import pytest

from awooop.mcp_gateway.domain.retries import (
    MAX_ATTEMPTS,
    classify,
    retry_delay,
    should_retry,
)

pytestmark = pytest.mark.unit

TRANSIENT = [
    "connection refused",
    "[Errno 111] Connection refused",
    "ConnectionRefusedError",
    "ECONNREFUSED 127.0.0.1:8080",
    "Connection reset by peer",
    "ConnectionResetError: [Errno 104]",
    "ECONNRESET",
    "the request timed out",
    "TimeoutError",
    "ReadTimeout while reading the answer",
    "read time-out",
    "HTTP 429",
    "429",
    "Too Many Requests",
    "TOO_MANY_REQUESTS",
    "503 service unavailable",
    "HTTP/1.1 503",
    "status=503",
    "ServiceUnavailable",
    "SERVICE_UNAVAILABLE",
    "service-unavailable",
    "Resource temporarily unavailable",
    "temporarily_unavailable",
    "I/O error on the data volume",
    "OSError: [Errno 5] Input/output error",
    "IOError",
]
PERMANENT = [
    "not found",
    "Not Found",
    "NotFound",
    "NOT_FOUND",
    "HTTP 404",
    "(404)",
    "forbidden",
    "403 Forbidden",
    "403",
    "Unauthorized",
    "HTTP 401 unauthorized",
    "invalid",
    "Invalid params: service must be a string",
    "INVALID_ARGUMENT",
    "400",
    "HTTP 400 Bad Request",
    "already exists",
    "AlreadyExists",
    "ALREADY-EXISTS",
    "409",
    "HTTP 409 Conflict",
    "blocked",
    "Blocked by the firewall policy",
]
BOTH = [
    "503: not found",
    "503 service unavailable: volume not found",
    "connection refused: forbidden",
    "timed out after an invalid request",
    "429 too many requests (already exists)",
    "Service Unavailable: BLOCKED",
    "I/O error: permission denied",
]
NEITHER = ["", "something went wrong", "the tool reported an error without text", "exit 1"]


@pytest.mark.parametrize("message", TRANSIENT)
def test_a_transient_failure_is_transient(message: str) -> None:
    verdict = classify(message)
    assert verdict.kind == "transient", verdict
    assert verdict.transient_signs
    assert not verdict.permanent_signs


@pytest.mark.parametrize("message", PERMANENT)
def test_a_permanent_failure_is_permanent(message: str) -> None:
    verdict = classify(message)
    assert verdict.kind == "permanent", verdict
    assert verdict.permanent_signs


@pytest.mark.parametrize("message", BOTH)
def test_a_failure_showing_both_is_permanent(message: str) -> None:
    verdict = classify(message)
    assert verdict.transient_signs, verdict
    assert verdict.permanent_signs, verdict
    assert verdict.kind == "permanent"


@pytest.mark.parametrize("message", NEITHER)
def test_a_failure_nothing_recognises_is_permanent_unless_the_transport_says(
    message: str,
) -> None:
    assert classify(message).kind == "permanent"
    assert classify(message, transport_transient=None).kind == "permanent"
    assert classify(message, transport_transient=True).kind == "transient"
    assert classify(message, transport_transient=False).kind == "permanent"


def test_what_the_transport_knew_counts_as_one_more_sign() -> None:
    # The transport's word is one sign among the message's: permanent still wins.
    assert classify("not found", transport_transient=True).kind == "permanent"
    assert classify("503 service unavailable", transport_transient=False).kind == "permanent"
    assert classify("connection reset", transport_transient=True).kind == "transient"


@pytest.mark.parametrize("message", ["took 15030 ms", "id 4040", "port 14290", "v4.0.3"])
def test_a_status_counts_only_standing_alone(message: str) -> None:
    verdict = classify(message)
    assert not verdict.transient_signs
    assert not verdict.permanent_signs


def test_two_retries_at_most_each_after_a_growing_delay_within_the_deadline() -> None:
    transient, permanent = classify("503 service unavailable"), classify("503: not found")
    assert MAX_ATTEMPTS == 3
    assert [retry_delay(0.5, n) for n in (1, 2)] == [0.5, 1.0]
    assert should_retry(transient, 1, seconds_left=60, delay=0.5)
    assert should_retry(transient, 2, seconds_left=60, delay=1.0)
    assert not should_retry(transient, 3, seconds_left=60, delay=1.5)
    assert not should_retry(permanent, 1, seconds_left=60, delay=0.5)
    assert not should_retry(transient, 1, seconds_left=0.4, delay=0.5)
