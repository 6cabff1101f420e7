"""Every consuming service's processor is built for a replay outside a running service."""

from __future__ import annotations

import pytest

from awooop.cli.dlq_replay import DlqCommandError, replay_target
from awooop.cli.migrate import SERVICE_APPS
from awooop.infra.runner import ServiceSpec
from awooop.infra.settings import SettingsError
from awooop.runtime.claim_handoff import REPLAY_OWNER, ClaimLoopHandoff, ReplayRuntimeProcessor
from awooop.security.signing_keys import generate_ed25519_keys

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("service", ["ingress", "runtime", "mcp_gateway", "projector"])
def test_each_consuming_service_builds_its_processor_without_a_runner(service: str) -> None:
    assert service in SERVICE_APPS
    target = replay_target(f"awooop.{service}")
    assert target.service == service
    assert callable(target.processor.process)
    assert callable(target.processor.decode)


def test_the_runtime_replay_leaves_its_steps_to_the_claim_loops() -> None:
    processor = replay_target("awooop.runtime").processor
    assert isinstance(processor, ReplayRuntimeProcessor)
    assert processor.name == "runtime"  # the live processor's inbox rows: one claim per event
    handoff = ClaimLoopHandoff()
    assert (handoff.owner, handoff.lease_seconds) == (REPLAY_OWNER, 0.0)


def test_a_service_that_consumes_nothing_has_no_handler() -> None:
    with pytest.raises(DlqCommandError, match="consumes nothing"):
        replay_target("awooop.approval", lambda service: ServiceSpec(service=service))


def test_the_approval_replay_grants_with_the_deployments_token_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A vote replayed from the DLQ may grant: the replay signs as the live service would.
    monkeypatch.delenv("AWOOOP_APPROVAL_TOKEN_SIGNING_KEY", raising=False)
    with pytest.raises(SettingsError, match="AWOOOP_APPROVAL_TOKEN_SIGNING_KEY"):
        replay_target("awooop.approval")
    key = generate_ed25519_keys("replay").signing_spec
    monkeypatch.setenv("AWOOOP_APPROVAL_TOKEN_SIGNING_KEY", key)
    target = replay_target("awooop.approval")
    assert target.service == "approval"
    assert callable(target.processor.process)
