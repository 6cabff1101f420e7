"""The projector reads the contract topic and verifies publications with the settings'
key ring: a running projector refuses to start without one, and a rebuild takes the
same ring the live projector reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceSpec
from awooop.infra.settings import KafkaSettings, Settings, SettingsError
from awooop.projector import app
from awooop.projector.handlers import ReadModelProjector
from awooop.projector.rebuild import Rebuild
from support.contract_envelopes import RING_SPEC

pytestmark = pytest.mark.unit

NO_RING = Settings(home=Path("/nonexistent"))
WITH_RING = dataclasses.replace(NO_RING, contract_verifying_keys=RING_SPEC)


def _processor(spec: ServiceSpec, settings: Settings) -> ReadModelProjector:
    assert spec.processor is not None
    runner: Any = SimpleNamespace(settings=settings)
    built = spec.processor(runner)
    assert isinstance(built, ReadModelProjector)
    return built


def test_the_contract_topic_is_projected() -> None:
    assert Topics.CONTRACT_EVENTS.name in app.spec().topics
    [migrations] = app.spec().migrations
    assert (migrations / "projector_0002_contracts.py").exists()


def test_a_running_projector_refuses_to_start_without_a_ring() -> None:
    with pytest.raises(SettingsError, match="AWOOOP_CONTRACT_VERIFYING_KEYS"):
        _processor(app.spec(), NO_RING)
    ring = _processor(app.spec(), WITH_RING).ring
    assert ring is not None
    assert ring.get("projector-test") is not None
    broken = dataclasses.replace(NO_RING, contract_verifying_keys="kid:EdDSA:not-a-key")
    with pytest.raises(SettingsError, match="AWOOOP_CONTRACT_VERIFYING_KEYS"):
        _processor(app.spec(), broken)


def test_outside_a_running_service_the_environment_ring_is_used_if_any(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = app.spec()
    assert spec.processor is not None
    monkeypatch.setenv("AWOOOP_HOME", "/nonexistent")
    monkeypatch.delenv("AWOOOP_CONTRACT_VERIFYING_KEYS", raising=False)
    replayer = spec.processor(None)
    assert isinstance(replayer, ReadModelProjector)
    assert replayer.ring is None
    monkeypatch.setenv("AWOOOP_CONTRACT_VERIFYING_KEYS", RING_SPEC)
    replayer = spec.processor(None)
    assert isinstance(replayer, ReadModelProjector)
    assert replayer.ring is not None


def test_a_rebuild_without_a_ring_refuses_to_begin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWOOOP_HOME", "/nonexistent")
    monkeypatch.delenv("AWOOOP_CONTRACT_VERIFYING_KEYS", raising=False)
    with pytest.raises(SettingsError, match="AWOOOP_CONTRACT_VERIFYING_KEYS"):
        Rebuild(KafkaSettings("127.0.0.1:9"), "postgresql://127.0.0.1:9/none")
    monkeypatch.setenv("AWOOOP_CONTRACT_VERIFYING_KEYS", RING_SPEC)
    job = Rebuild(KafkaSettings("127.0.0.1:9"), "postgresql://127.0.0.1:9/none")._job([], {}, None)
    assert job.ring is not None
    assert job.ring.get("projector-test") is not None
