"""Onboarding a tenant against a hand-written fake of the approval command API: every
contract ends active with enough distinct signers (never the author), a second run appends
nothing and says so, a changed file supersedes its revision, and a bad file sends nothing."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from awooop.cli import onboarding
from awooop.cli.contract_client import ContractCommandError
from awooop.cli.contract_files import ContractFile, ContractFileError
from awooop.cli.onboarding import onboard, read_tenant_files

pytestmark = pytest.mark.unit

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "contracts" / "demo"
TWO_SIGNATURES = {"policy", "budget"}


@dataclass
class _Revision:
    body: dict[str, Any]
    author: str
    state: str = "draft"
    signers: list[str] = field(default_factory=list)


@dataclass
class FakeApprovalApi:
    """The command API's rules as decision 0026 and the lifecycle table state them."""

    contracts: dict[tuple[str, str], tuple[str, list[_Revision]]] = field(default_factory=dict)
    answers: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    events: list[tuple[str, str, str, str, int]] = field(default_factory=list)

    def post(
        self, subject: str, project: str, contract: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        asked = repr((contract, path, body.get("body")))
        earlier = self.answers.get((project, body["request_id"]))
        if earlier is not None:
            if earlier[0] != asked:
                raise ContractCommandError("E-CONTRACT-REQUEST-REUSED: reused")
            return earlier[1]
        answer = self._decide(subject, project, contract, path, body)
        self.answers[(project, body["request_id"])] = (asked, answer)
        return answer

    def _decide(
        self, subject: str, project: str, contract: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if path == "drafts":
            family, revisions = self.contracts.setdefault((project, contract), (body["family"], []))
            revisions.append(_Revision(body["body"], subject))
            return self._event("draft_created", subject, project, contract, len(revisions))
        family, revisions = self.contracts[(project, contract)]
        number = int(path.split("/")[1])
        revision, verb = revisions[number - 1], path.split("/")[2]
        wanted = {"publish": "draft", "signatures": "published", "activate": "published"}[verb]
        if revision.state != wanted:
            done = {"publish": "published", "signatures": "signed", "activate": "activated"}[verb]
            reason = f"revision {number} is {revision.state}: only a {wanted} one can be {done}"
            raise ContractCommandError(f"E-CONTRACT-STATE: {reason}")
        needed = 2 if family in TWO_SIGNATURES else 1
        if verb == "publish":
            revision.state = "published"
        elif verb == "signatures":
            if subject == revision.author:
                raise ContractCommandError(f"E-CONTRACT-SIGNER-AUTHOR: {subject!r} wrote it")
            if subject in revision.signers:
                raise ContractCommandError(f"E-CONTRACT-SIGNER-REPEATED: {subject!r} signed")
            revision.signers.append(subject)
        else:
            if len(revision.signers) < needed:
                reason = f"revision {number} has {len(revision.signers)} of the {needed}"
                raise ContractCommandError(f"E-CONTRACT-STATE: {reason}")
            for other in revisions:
                if other.state == "active":
                    other.state = "retired"
            revision.state = "active"
        answer = self._event(verb, subject, project, contract, number)
        return {**answer, "signers": list(revision.signers), "required_signatures": needed}

    def _event(
        self, verb: str, subject: str, project: str, contract: str, number: int
    ) -> dict[str, Any]:
        self.events.append((verb, subject, project, contract, number))
        return {"project_id": project, "contract_id": contract, "revision": number}

    def active(self) -> dict[str, tuple[int, list[str]]]:
        return {
            contract: (number, revision.signers)
            for (_, contract), (_, revisions) in self.contracts.items()
            for number, revision in enumerate(revisions, start=1)
            if revision.state == "active"
        }


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApprovalApi:
    fake = FakeApprovalApi()

    class FakeClient:
        def __init__(self, token: str | None = None, subject: str | None = None) -> None:
            assert token is None
            self.subject = subject or "operator:nobody"

        def post(
            self, project: str, contract: str, path: str, body: dict[str, Any]
        ) -> dict[str, Any]:
            return fake.post(self.subject, project, contract, path, body)

        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

    monkeypatch.setattr(onboarding, "ContractClient", FakeClient)
    monkeypatch.delenv("AWOOOP_TOKEN", raising=False)
    return fake


def test_every_contract_ends_active_with_its_signers_never_the_author(
    api: FakeApprovalApi,
) -> None:
    done = onboard(read_tenant_files([DEMO]), author="operator:alice")
    assert all(result.activated for result in done)
    assert [result.family for result in done] == [
        "runtime_run_state",
        *["tool"] * 7,
        "agent",
        "policy",
        "budget",
        "channel_binding",
    ]
    active = api.active()
    assert set(active) == {result.contract for result in done}
    for result in done:
        needed = 2 if result.family in TWO_SIGNATURES else 1
        assert active[result.contract] == (1, ["operator:bob", "operator:carol"][:needed])
        assert result.line().startswith(f"demo/{result.contract}: revision 1 active (")


def test_a_second_onboarding_appends_nothing_and_says_already_active(
    api: FakeApprovalApi,
) -> None:
    files = read_tenant_files([DEMO])
    onboard(files)
    before = list(api.events)
    again = onboard(files)
    assert api.events == before
    assert [result.line() for result in again] == [
        f"demo/{read.contract}: revision 1 already active ({read.family})" for read in files
    ]


def test_a_changed_file_supersedes_its_active_revision(
    api: FakeApprovalApi, tmp_path: Path
) -> None:
    folder = shutil.copytree(DEMO, tmp_path / "demo")
    onboard(read_tenant_files([folder]))
    agent = folder / "agent.yaml"
    agent.write_text(agent.read_text().replace("history_turns: 10", "history_turns: 12"))
    done = {result.contract: result for result in onboard(read_tenant_files([folder]))}
    assert done["demo-agent"].activated
    assert done["demo-agent"].revision == 2
    assert api.active()["demo-agent"][0] == 2
    assert not done["policy"].activated


def test_a_signer_who_signed_already_is_passed_over(api: FakeApprovalApi) -> None:
    (policy,) = [read for read in read_tenant_files([DEMO]) if read.family == "policy"]
    api.post(
        "operator:dave",
        "demo",
        "policy",
        "drafts",
        {**_draft(policy), "request_id": policy.request_id},
    )
    api.post("operator:dave", "demo", "policy", "revisions/1/publish", {"request_id": "by-hand-1"})
    api.post(
        "operator:alice", "demo", "policy", "revisions/1/signatures", {"request_id": "by-hand-2"}
    )
    (done,) = onboard([policy], author="operator:dave")
    assert done.activated
    assert done.signers == ("operator:alice", "operator:bob")


def test_too_few_signers_is_refused_naming_the_file(api: FakeApprovalApi) -> None:
    budget = [read for read in read_tenant_files([DEMO]) if read.family == "budget"]
    with pytest.raises(
        ContractCommandError, match=r"budget\.yaml: E-CONTRACT-STATE: .* 1 of the 2"
    ):
        onboard(budget, author="operator:dave", signers=["operator:dave", "operator:erin"])


def _draft(read: ContractFile) -> dict[str, Any]:
    return {"family": read.family, "body": read.body}


def test_a_bad_file_sends_nothing(api: FakeApprovalApi, tmp_path: Path) -> None:
    folder = shutil.copytree(DEMO, tmp_path / "demo")
    (folder / "zz-broken.yaml").write_text(
        "project: demo\ncontract: broken\nbody: {family: policy, schema_version: 1}\n"
    )
    with pytest.raises(ContractFileError, match=r"zz-broken\.yaml: not a valid policy"):
        read_tenant_files([folder])
    assert api.events == []


def test_a_fixed_token_is_refused(api: FakeApprovalApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWOOOP_TOKEN", "x")
    with pytest.raises(ContractCommandError, match="unset AWOOOP_TOKEN"):
        onboard(read_tenant_files([DEMO]))
    assert api.events == []


def test_content_of_a_retired_revision_is_refused_with_the_way_out(
    api: FakeApprovalApi, tmp_path: Path
) -> None:
    folder = shutil.copytree(DEMO, tmp_path / "demo")
    agent = folder / "agent.yaml"
    original = agent.read_text()
    onboard(read_tenant_files([folder]))
    agent.write_text(original.replace("history_turns: 10", "history_turns: 12"))
    onboard(read_tenant_files([folder]))
    agent.write_text(original)
    with pytest.raises(ContractCommandError, match=r"agent\.yaml: .*revision 1 is retired.*change"):
        onboard(read_tenant_files([folder]))
    assert api.active()["demo-agent"][0] == 2
