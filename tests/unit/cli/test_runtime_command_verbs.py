"""`awooop runs cancel` and `awooop budget reset` against a stand-in runtime API: what each
prints, the development operator token it sends, and a refusal or an unreachable API as
one error line with no trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from awooop.cli import runtime_commands
from awooop.cli.main import main
from awooop.cli.runtime_client import RuntimeClient
from awooop.security.api_tokens import verify_api_token

pytestmark = pytest.mark.unit

SECRET = "cli-runtime-commands-secret-0123456789"
RUN = "0190f3a2-0000-7000-8000-000000000001"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def runtime_api(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], None]:
    monkeypatch.setenv("AWOOOP_API_JWT_SECRET", SECRET)
    monkeypatch.delenv("AWOOOP_TOKEN", raising=False)

    def serve(handler: Handler) -> None:
        def client(token: str, url: str | None = None, transport: Any = None) -> RuntimeClient:
            return RuntimeClient(token, "http://runtime", httpx.MockTransport(handler))

        monkeypatch.setattr(runtime_commands, "RuntimeClient", client)

    return serve


def test_a_cancel_sends_an_operator_token_and_says_what_happened(
    runtime_api: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = {"run_id": RUN, "project_id": "acme", "state": "cancelled", "already": False}
        return httpx.Response(200, json=answer)

    runtime_api(handler)
    assert main(["runs", "cancel", RUN, "--reason", "wrong agent", "--as", "user:ops"]) == 0
    assert capsys.readouterr().out == f"run {RUN} of project acme cancelled\n"
    (request,) = seen
    assert request.url.path == f"/v1/runs/{RUN}/cancel"
    assert request.content == b'{"reason":"wrong agent"}'
    bearer = request.headers["Authorization"].removeprefix("Bearer ")
    claims = verify_api_token(bearer, SECRET)
    assert (claims.subject, claims.roles) == ("user:ops", ("operator",))


def test_a_reset_says_whether_the_switch_was_tripped(
    runtime_api: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    runtime_api(lambda _r: httpx.Response(200, json={"project_id": "acme", "was_killed": True}))
    assert main(["budget", "reset", "acme", "--reason", "budget raised"]) == 0
    assert capsys.readouterr().out == "project acme: kill switch reset; runs may start again\n"
    runtime_api(lambda _r: httpx.Response(200, json={"project_id": "acme", "was_killed": False}))
    assert main(["budget", "reset", "acme", "--reason", "again"]) == 0
    assert "was not tripped" in capsys.readouterr().out


def test_a_refusal_is_one_error_line(
    runtime_api: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = {"code": "E-RUN-ENDED", "reason": f"run {RUN} already ended (completed)"}
    runtime_api(lambda _r: httpx.Response(409, json=refusal, request=_r))
    assert main(["runs", "cancel", RUN, "--reason", "too late"]) == 2
    err = capsys.readouterr().err
    assert err == f"awooop: error: E-RUN-ENDED: run {RUN} already ended (completed)\n"


def test_an_unreachable_api_is_one_error_line_without_a_trace(
    runtime_api: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    runtime_api(refused)
    assert main(["budget", "reset", "acme", "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("awooop: error: the runtime API at http://runtime is unreachable")
    assert "ConnectError" in err
    assert "Traceback" not in err


def test_no_recorded_address_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWOOOP_HOME", str(tmp_path))
    monkeypatch.setenv("AWOOOP_TOKEN", "a-token")
    monkeypatch.delenv("AWOOOP_RUNTIME_URL", raising=False)
    assert main(["runs", "cancel", RUN, "--reason", "x"]) == 2
    assert "set AWOOOP_RUNTIME_URL" in capsys.readouterr().err


def test_the_ledger_lines_show_settled_and_reserved_against_each_limit() -> None:
    from awooop.cli.runtime_commands import describe_ledger

    scope = {
        "scope": "tenant",
        "subject": "demo",
        "period": "daily",
        "period_key": "2026-12-07",
        "limit_tokens": 1000,
        "limit_cost": None,
        "reserved_tokens": 120,
        "reserved_cost": "0.25",
        "settled_tokens": 300,
        "settled_cost": "0.5",
        "tripped": True,
    }
    lines = describe_ledger({"project_id": "demo", "killed": True, "scopes": [scope]})
    assert lines == [
        "project demo: kill switch TRIPPED",
        "  tenant demo daily 2026-12-07: tokens 300 settled + 120 reserved of 1000  (tripped)",
    ]
