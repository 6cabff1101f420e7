"""Every verb that reads the query API says an unreachable API in one line on stderr, with
exit code 2 and no traceback."""

from __future__ import annotations

import httpx
import pytest

from awooop.cli.main import main
from support.query_api import stand_in_queries

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("verb", [["channel-events", "list"], ["mcp-calls", "list"]])
def test_an_unreachable_api_is_one_line_on_stderr(
    verb: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    stand_in_queries(monkeypatch, down)
    assert main(verb) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "unreachable (ConnectError)" in err[0]
