"""`awooop contracts list | show | diff` over a hand-written query API fake: the lines
they print, diff's exit status (0 equal, 1 different) and every refusal as one line,
exit 2; and the real client's one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from awooop.cli import contracts
from awooop.cli.contract_client import ContractCommandError
from awooop.cli.main import main
from awooop.cli.queries import QueryClient, _refusal

pytestmark = pytest.mark.unit

FIRST = {"family": "policy", "mode": "suggest", "approvers": ["alice", "bob"]}
SECOND = {"family": "policy", "mode": "active", "approvers": ["alice", "bob", "dave"]}


def _revision(n: int, state: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "revision": n,
        "lifecycle": state,
        "author": "carol",
        "body": body,
        "body_sha256": "ab" * 32,
        "signature": {"kid": "dev-contracts", "alg": "EdDSA", "check": "valid"},
        "signers": ["alice", "bob"],
        "drafted_at": "2026-05-01T08:00:00Z",
        "published_at": "2026-05-01T08:01:00Z",
        "activated_at": "2026-05-01T08:02:00Z" if state != "published" else None,
        "retired_at": "2026-05-01T09:00:00Z" if state == "retired" else None,
    }


DETAIL = {
    "contract": {
        "contract_id": "payments",
        "project_id": "acme",
        "family": "policy",
        "lifecycle": "active",
        "active_revision": 2,
        "latest_revision": 2,
        "updated_at": "2026-05-01T09:00:00Z",
    },
    "revisions": [_revision(1, "retired", FIRST), _revision(2, "active", SECOND)],
}


class FakeQueryClient:
    """The query API of project `acme`, holding one contract."""

    asked: list[tuple[str, Any]] = []

    def __init__(self, project: str) -> None:
        self.project = project

    def contracts(self, family: str | None = None, lifecycle: str | None = None) -> list[Any]:
        self.asked.append(("list", (self.project, family, lifecycle)))
        return [DETAIL["contract"]] if self.project == "acme" else []

    def contract(self, contract_id: str) -> dict[str, Any]:
        self.asked.append(("show", (self.project, contract_id)))
        if (self.project, contract_id) != ("acme", "payments"):
            raise ContractCommandError(
                f"HTTP 404: contract {contract_id!r} not found in project {self.project!r}"
            )
        return DETAIL

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def fake_api(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeQueryClient.asked = []
    monkeypatch.setattr(contracts, "QueryClient", FakeQueryClient)


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("awooop: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def test_diff_of_two_revisions_is_a_unified_diff_of_sorted_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contracts", "diff", "payments", "1", "2", "--project", "acme"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["--- payments@1", "+++ payments@2"]
    assert '-  "mode": "suggest"' in out
    assert '+  "mode": "active"' in out
    assert '+    "dave"' in out
    assert ' "family": "policy",' not in out  # sorted keys, two-space indent
    assert '   "family": "policy",' in out
    assert main(["contracts", "diff", "payments", "2", "2", "--project", "acme"]) == 0
    assert capsys.readouterr().out == ""


def test_diff_renders_yaml_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "diff", "payments", "1", "2", "--project", "acme", "--yaml"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "-mode: suggest" in out
    assert "+mode: active" in out


def test_diff_of_a_file_against_the_active_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "same.json"
    same.write_text(json.dumps({"project": "acme", "contract": "payments", "body": SECOND}))
    assert main(["contracts", "diff", "payments", "--file", str(same)]) == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text("project: acme\ncontract: payments\nbody: {family: policy, mode: shadow}\n")
    assert main(["contracts", "diff", "payments", "--file", str(changed)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["--- payments@2 (active)", f"+++ {changed}"]
    assert '+  "mode": "shadow"' in out


def test_every_refusal_of_diff_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_line_error(
        capsys, main(["contracts", "diff", "payments", "1", "--project", "acme"])
    )
    assert "give two revisions" in line
    line = _one_line_error(
        capsys, main(["contracts", "diff", "payments", "1", "9", "--project", "acme"])
    )
    assert line.endswith("has no revision 9 (it has 1, 2)")
    line = _one_line_error(capsys, main(["contracts", "diff", "nothing", "1", "2"]))
    assert "HTTP 404" in line
    assert "'nothing' not found" in line
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"project": "acme", "contract": "budget", "body": FIRST}))
    line = _one_line_error(capsys, main(["contracts", "diff", "payments", "--file", str(other)]))
    assert "names contract 'budget', not 'payments'" in line
    both = ["contracts", "diff", "payments", "1", "2", "--file", str(other)]
    assert "not both" in _one_line_error(capsys, main(both))
    missing = ["contracts", "diff", "payments", "--file", str(tmp_path / "none.yaml")]
    assert "cannot read" in _one_line_error(capsys, main(missing))


def test_list_and_show_print_what_the_api_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "list", "--project", "acme", "--lifecycle", "active"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split()[:4] == ["payments", "policy", "active", "active"]
    assert FakeQueryClient.asked[-1] == ("list", ("acme", None, "active"))
    assert main(["contracts", "show", "payments", "--project", "acme"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("contract acme/payments  policy  active  active 2  latest 2")
    assert any("revision 1  retired" in line and "signature valid" in line for line in out)
    assert "  body of revision 2 (active):" in out
    assert '      "mode": "active"' in out
    assert main(["contracts", "show", "payments", "--project", "acme", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == DETAIL


def test_the_real_client_turns_refusals_into_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    request = httpx.Request("GET", "http://api/v1/contracts")
    unknown = httpx.Response(404, json={"detail": "contract 'x' not found"}, request=request)
    assert _refusal(unknown) == "HTTP 404: contract 'x' not found"
    invalid = httpx.Response(
        422,
        json={"detail": [{"loc": ["query", "family"], "msg": "Input should be 'agent'"}]},
        request=request,
    )
    assert _refusal(invalid) == "HTTP 422: family: Input should be 'agent'"
    monkeypatch.setenv("AWOOOP_API_JWT_SECRET", "s" * 40)
    client = QueryClient("acme", api_url="http://127.0.0.1:9")
    with pytest.raises(ContractCommandError, match="unreachable"):
        client.contracts()
    client.close()
