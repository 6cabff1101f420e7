"""A forked rebuild loader that fails ends the whole load, with its reason, and leaves no
process behind: a loader still waiting on its database is killed, not waited for."""

from __future__ import annotations

import multiprocessing
import socket

import pytest
from aiokafka.structs import TopicPartition

from awooop.infra.embedded.processes import free_port
from awooop.infra.settings import KafkaSettings
from awooop.projector.rebuild_load import LoadFailed, LoadJob, load_in_parallel

pytestmark = pytest.mark.integration


def _job(partition: int, database_url: str) -> LoadJob:
    return LoadJob(
        kafka=KafkaSettings(f"127.0.0.1:{free_port()}"),
        admin_url=database_url,
        schema="projector_rebuild_none",
        role="awooop_projector",
        group="awooop.projector.rebuild.none",
        partitions=(TopicPartition("awooop.run.events.v1", partition),),
        starts={},
        stops=None,
        batch_records=100,
    )


async def test_a_failing_worker_fails_the_load_and_no_worker_outlives_it() -> None:
    nobody_listens = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    progress: list[object] = []
    with pytest.raises(LoadFailed) as failed:
        await load_in_parallel([_job(0, nobody_listens), _job(1, nobody_listens)], progress.append)
    assert "rebuild worker" in str(failed.value)
    assert "Connect" in str(failed.value) or "refused" in str(failed.value), failed.value
    assert progress == []
    assert multiprocessing.active_children() == []


async def test_a_worker_still_waiting_is_killed_when_another_fails() -> None:
    # A listener that never answers: its loader waits on the Postgres handshake for
    # ten minutes, past the test's own timeout, unless the failed load kills it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        hangs = f"postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=600"
        refused = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
        with pytest.raises(LoadFailed) as failed:
            await load_in_parallel([_job(0, hangs), _job(1, refused)], lambda _state: None)
    assert "rebuild worker 1" in str(failed.value)
    assert multiprocessing.active_children() == []
