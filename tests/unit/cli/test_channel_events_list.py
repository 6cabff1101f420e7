"""`awooop channel-events list` against a stand-in query API: the filters become query
parameters, each event is one line saying what became of it, a refusal or an unreachable
API is one line on stderr."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from awooop.cli import queries
from awooop.cli.main import build_parser, main
from awooop.projector.domain.channel_events import CHANNEL_OUTCOMES
from support.query_api import stand_in_queries

pytestmark = pytest.mark.unit

RUN = "0196a5d1-ac96-774b-bcce-b302099a8057"
OTHER = "0196a5d1-ac96-774b-bcce-b302099a8058"


def _event(outcome: str, **fields: Any) -> dict[str, Any]:
    kind = {
        "button_pressed": "button",
        "ignored": "ignored",
        "duplicate_of": "duplicate",
        "rejected": "rejected",
    }.get(outcome, "message")
    return {
        "event_id": OTHER,
        "kind": kind,
        "outcome": outcome,
        "channel_type": "telegram",
        "provider_event_id": "7:100",
        "display_text": "is the\ndatabase healthy?",
        "occurred_at": "2026-05-04T10:00:01.123456Z",
        "run_id": None,
        "queued_on": None,
        "busy_with": None,
        "duplicate_of": None,
        "code": None,
        "reason": None,
        **fields,
    }


EXAMPLES = {
    "run_started": _event("run_started", run_id=RUN),
    "busy": _event("busy", busy_with=RUN),
    "queued": _event("queued", queued_on=RUN),
    "received": _event("received"),
    "button_pressed": _event("button_pressed", display_text="approve:call-1"),
    "ignored": _event("ignored", reason="a bot's\nmessage"),
    "duplicate_of": _event("duplicate_of", duplicate_of=RUN),
    "rejected": _event(
        "rejected", code="E-INBOUND-INVALID", reason="not an object", channel_type=None
    ),
}


def test_each_outcome_is_one_line_naming_what_happened() -> None:
    assert set(EXAMPLES) == set(CHANNEL_OUTCOMES)
    lines = {outcome: queries.format_channel_event(e) for outcome, e in EXAMPLES.items()}
    assert all("\n" not in line for line in lines.values())
    assert lines["run_started"].startswith("2026-05-04T10:00:01.123  run_started    telegram 7:100")
    assert f"run {RUN}" in lines["run_started"]
    assert "'is the database healthy?'" in lines["run_started"]
    assert f"refused: run {RUN} was active" in lines["busy"]
    assert f"queued behind run {RUN}" in lines["queued"]
    assert f"repeats {RUN}" in lines["duplicate_of"]
    assert "E-INBOUND-INVALID: not an object" in lines["rejected"]
    assert " ? " in lines["rejected"]  # a rejected record may name no channel
    assert "button 'approve:call-1'" in lines["button_pressed"]
    assert "a bot's message" in lines["ignored"]


def test_the_filters_become_query_parameters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [EXAMPLES["busy"], EXAMPLES["run_started"]]
    seen = stand_in_queries(monkeypatch, lambda _r: httpx.Response(200, json={"items": events}))
    argv = ["channel-events", "list", "--outcome", "busy", "--channel", "slack"]
    assert main([*argv, "--prefix", "Ev_1", "--limit", "5"]) == 0
    assert dict(seen[0].url.params) == {
        "limit": "5",
        "outcome": "busy",
        "channel_type": "slack",
        "provider_event_id_prefix": "Ev_1",
    }
    assert seen[0].url.path == "/v1/channel-events"
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2
    assert "busy" in printed[0]


def test_a_refusal_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    detail = [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 500"}]
    stand_in_queries(monkeypatch, lambda _r: httpx.Response(422, json={"detail": detail}))
    assert main(["channel-events", "list", "--limit", "900"]) == 2
    err = capsys.readouterr().err
    assert err == "awooop: error: HTTP 422: limit: Input should be less than or equal to 500\n"


def test_an_unknown_outcome_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["channel-events", "list", "--outcome", "lost"])
