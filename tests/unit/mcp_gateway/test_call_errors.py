"""Classifying a call that produced no answer: transient or permanent, with a safe reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import MCPError
from mcp.types.jsonrpc import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
)

from awooop.mcp_gateway.adapters.call_errors import (
    MAX_REASON_CHARS,
    PERMANENT_PATTERNS,
    TRANSIENT_PATTERNS,
    CallFailure,
    CredentialUnavailable,
    SessionUnavailable,
    classify_failure,
)

pytestmark = pytest.mark.unit


class ConnectError(Exception):
    """Named like httpx2's: recognised by name, wherever it comes from."""


class ClosedResourceError(Exception):
    """Named like anyio's."""


def _group(*errors: Exception) -> ExceptionGroup:
    return ExceptionGroup("unhandled errors in a TaskGroup", list(errors))


TRANSIENT = [
    ("connection refused", ConnectionRefusedError(111, "Connection refused"), {}),
    ("connection reset", ConnectionResetError(104, "Connection reset by peer"), {}),
    ("broken pipe", BrokenPipeError(32, "Broken pipe"), {}),
    ("server process exited", ProcessLookupError(), {}),
    ("stream closed", ClosedResourceError(), {}),
    ("connection closed", MCPError(CONNECTION_CLOSED, "Connection closed"), {}),
    ("session terminated", MCPError(INVALID_REQUEST, "Session terminated"), {"statuses": [404]}),
    ("request timeout", MCPError(REQUEST_TIMEOUT, "Request 'tools/call' timed out"), {}),
    ("our timeout", TimeoutError(), {}),
    ("HTTP connect", _group(ConnectError("All connection attempts failed")), {}),
    ("HTTP connect seen", MCPError(CONNECTION_CLOSED, "x"), {"transport": ["ConnectError"]}),
    ("opening", SessionUnavailable("could not open"), {}),
    *(
        (
            f"HTTP {s}",
            MCPError(INTERNAL_ERROR, "Server returned an error response"),
            {"statuses": [s]},
        )
        for s in (429, 502, 503, 504)
    ),
]

PERMANENT = [
    ("invalid params", MCPError(INVALID_PARAMS, "Invalid params"), {}),
    ("method not found", MCPError(METHOD_NOT_FOUND, "Method not found"), {}),
    ("invalid request", MCPError(INVALID_REQUEST, "Invalid request"), {}),
    ("credential", CredentialUnavailable("credential API_KEY of tool 'x__y': unset"), {}),
    ("unrecognised", RuntimeError("something odd"), {}),
    ("unrecognised JSON-RPC", MCPError(INTERNAL_ERROR, "Server returned an error response"), {}),
    ("HTTP 500 alone", MCPError(INTERNAL_ERROR, "error"), {"statuses": [500]}),
    *(
        (
            f"HTTP {s}",
            MCPError(INTERNAL_ERROR, "Server returned an error response"),
            {"statuses": [s]},
        )
        for s in (400, 401, 403)
    ),
    ("HTTP 404 before any session", MCPError(METHOD_NOT_FOUND, "Not Found"), {"statuses": [404]}),
]


def _classify(error: BaseException, seen: dict[str, list[object]]) -> CallFailure:
    classified = classify_failure(
        error,
        http_statuses=seen.get("statuses", []),  # type: ignore[arg-type]
        transport_errors=seen.get("transport", []),  # type: ignore[arg-type]
    )
    return classified.failure()


@pytest.mark.parametrize(("case", "error", "seen"), TRANSIENT, ids=[c[0] for c in TRANSIENT])
def test_transient_failures(case: str, error: BaseException, seen: dict[str, list[object]]) -> None:
    assert _classify(error, seen).transient is True, case


@pytest.mark.parametrize(("case", "error", "seen"), PERMANENT, ids=[c[0] for c in PERMANENT])
def test_permanent_failures(case: str, error: BaseException, seen: dict[str, list[object]]) -> None:
    assert _classify(error, seen).transient is False, case


@pytest.mark.parametrize(
    ("error", "seen"),
    [
        (MCPError(INVALID_PARAMS, "Request timed out validating params"), {}),
        (MCPError(REQUEST_TIMEOUT, "timed out"), {"statuses": [401]}),
        (MCPError(INTERNAL_ERROR, "error"), {"statuses": [503, 403]}),
        (ConnectionResetError(104, "reset: unauthorized"), {}),
        (_group(TimeoutError(), RuntimeError("Invalid params")), {}),
    ],
)
def test_signs_of_both_make_a_failure_permanent(
    error: BaseException, seen: dict[str, list[object]]
) -> None:
    assert _classify(error, seen).transient is False


def test_an_unrecognised_failure_is_left_to_the_caller() -> None:
    classified = classify_failure(RuntimeError("odd"))
    assert classified.transient is None
    assert classified.failure().transient is False
    assert classified.failure(unrecognised_transient=True).transient is True


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (MCPError(CONNECTION_CLOSED, "Connection closed"), True),
        (MCPError(INVALID_REQUEST, "Session terminated"), True),
        (BrokenPipeError(), True),
        (_group(ConnectError("down")), True),
        (MCPError(REQUEST_TIMEOUT, "timed out"), False),
        (MCPError(INVALID_PARAMS, "Invalid params"), False),
    ],
)
def test_which_failures_say_the_connection_is_gone(error: BaseException, lost: bool) -> None:
    assert classify_failure(error).connection_lost is lost


def test_the_reason_names_types_codes_and_statuses_and_blots_secrets() -> None:
    error = MCPError(INVALID_PARAMS, "bad token Bearer s3cr3t-value for key api-k")
    error.__cause__ = ValueError("raw header Authorization: Bearer s3cr3t-value")
    classified = classify_failure(
        error,
        http_statuses=[400],
        transport_errors=["ReadError"],
        secrets={"Bearer s3cr3t-value", "api-k"},
    )
    assert classified.reason == (
        "MCPError <- ValueError; JSON-RPC -32602: bad token [credential] for key [credential]; "
        "HTTP 400; HTTP transport: ReadError"
    )


def test_other_exceptions_are_named_never_quoted() -> None:
    error = RuntimeError("Illegal header value b'X-Credential-API-KEY: hunter2'")
    assert "hunter2" not in classify_failure(error).reason
    assert classify_failure(error).reason == "RuntimeError"


def test_the_reason_is_bounded() -> None:
    error = MCPError(INVALID_PARAMS, "x" * 10_000)
    reason = classify_failure(error).failure().reason
    assert len(reason) == MAX_REASON_CHARS
    assert reason.endswith("…")
    assert len(CallFailure("y" * 5000, transient=True).reason) == MAX_REASON_CHARS


def test_session_and_credential_failures_are_call_failures() -> None:
    credential = CredentialUnavailable("credential X of tool 't__p': unset")
    assert isinstance(credential, SessionUnavailable)
    assert isinstance(credential, CallFailure)
    assert (credential.transient, SessionUnavailable("down").transient) == (False, True)
    assert classify_failure(credential).failure().transient is False


@given(
    st.sampled_from(TRANSIENT_PATTERNS),
    st.sampled_from(PERMANENT_PATTERNS),
    st.text(max_size=20),
    st.sampled_from([CONNECTION_CLOSED, REQUEST_TIMEOUT, INTERNAL_ERROR, -1]),
)
def test_any_message_matching_both_kinds_of_pattern_is_permanent(
    transient: str, permanent: str, filler: str, code: int
) -> None:
    error = MCPError(code, f"{transient.upper()}{filler}{permanent}")
    assert classify_failure(error).transient is False
