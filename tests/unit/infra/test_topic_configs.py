"""The topic config check against answers shaped as a real Kafka 3.x cluster gives them.

Break caught: a start-up that accepts a topic Kafka would delete after seven days (the
broker default `retention.ms=604800000`), one replica where three are wanted, or a
`min.insync.replicas` that lets an acknowledged write live on one broker only — or
that refuses an embedded broker which simply does not report its configs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka.protocol.admin import DescribeConfigsResponse_v1

from awooop.contracts.registries.topics import ALL_TOPICS, Topics
from awooop.infra.kafka.admin import check_topic_configs, topic_states
from awooop.infra.settings import KafkaSettings

pytestmark = pytest.mark.unit

ANSWERS = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "kafka3_topic_answers.json").read_text()
)
PRODUCTION = KafkaSettings(bootstrap="kafka-1:9092")  # replication 3, min.insync 2
EMBEDDED = KafkaSettings(bootstrap="127.0.0.1:9092", replication_factor=1, min_insync_replicas=1)


def _metadata(replicas: list[int] | None = None) -> list[dict[str, Any]]:
    partition = dict(ANSWERS["metadata_partition"])
    if replicas is not None:
        partition["replicas"] = replicas
    return [
        {
            "error_code": 0,
            "topic": t.name,
            "is_internal": False,
            "partitions": [{**partition, "partition": p} for p in range(t.partitions)],
        }
        for t in ALL_TOPICS
    ]


def _described(overrides: dict[str, str], *, report_defaults: bool = True) -> list[Any]:
    """One DescribeConfigs v1 response for every registry topic."""

    def entries() -> list[tuple[str, str, bool, int, bool, list[Any]]]:
        shown = dict(ANSWERS["defaults"]) if report_defaults else {}
        listed = []
        for name, value in {**shown, **overrides}.items():
            source = 1 if name in overrides else 5
            listed.append((name, value, False, source, False, []))
        return listed

    resources = [(0, None, 2, t.name, entries()) for t in ALL_TOPICS]
    return [DescribeConfigsResponse_v1(throttle_time_ms=0, resources=resources)]


def test_topics_created_by_the_platform_pass() -> None:
    states = topic_states(_metadata(), _described(ANSWERS["set_by_awooop"]))
    check = check_topic_configs(states, PRODUCTION)
    assert check.refusals == []
    assert check.unverified == {}


def test_a_topic_at_the_broker_default_retention_is_refused_with_the_fix() -> None:
    overrides = dict(ANSWERS["set_by_awooop"])
    del overrides["retention.ms"]  # what a topic made by hand gets: seven days
    check = check_topic_configs(topic_states(_metadata(), _described(overrides)), PRODUCTION)
    run_events = [r for r in check.refusals if r.startswith(Topics.RUN_EVENTS.name + " ")]
    assert len(check.refusals) == len(ALL_TOPICS)
    assert run_events == [
        f"{Topics.RUN_EVENTS.name} has retention.ms=604800000, wanted -1: kafka-configs.sh "
        "--bootstrap-server <broker> --alter --entity-type topics --entity-name "
        f"{Topics.RUN_EVENTS.name} --add-config retention.ms=-1"
    ]


def test_one_replica_where_three_are_wanted_is_refused() -> None:
    states = topic_states(_metadata(replicas=[2]), _described(ANSWERS["set_by_awooop"]))
    check = check_topic_configs(states, PRODUCTION)
    assert len(check.refusals) == len(ALL_TOPICS)
    assert all("replication factor 1, wanted 3" in r for r in check.refusals)
    assert "kafka-reassign-partitions.sh" in check.refusals[0]


def test_min_insync_replicas_at_the_default_is_refused() -> None:
    overrides = dict(ANSWERS["set_by_awooop"])
    del overrides["min.insync.replicas"]
    check = check_topic_configs(topic_states(_metadata(), _described(overrides)), PRODUCTION)
    assert len(check.refusals) == len(ALL_TOPICS)
    assert all("min.insync.replicas=1, wanted 2" in r for r in check.refusals)


def test_a_record_limit_below_ours_is_refused() -> None:
    overrides = {**ANSWERS["set_by_awooop"], "max.message.bytes": "1048588"}
    check = check_topic_configs(topic_states(_metadata(), _described(overrides)), PRODUCTION)
    assert len(check.refusals) == len(ALL_TOPICS)
    assert all("max.message.bytes=1048588" in r for r in check.refusals)


def test_an_embedded_broker_that_reports_nothing_is_unverified_not_refused() -> None:
    described = _described({}, report_defaults=False)  # Tansu: only explicitly set configs
    states = topic_states(_metadata(replicas=[111]), described)
    check = check_topic_configs(states, EMBEDDED)
    assert check.refusals == []
    assert sorted(check.unverified) == sorted(t.name for t in ALL_TOPICS)
    assert set(check.unverified[Topics.RUN_EVENTS.name]) == {
        "retention.ms",
        "cleanup.policy",
        "max.message.bytes",
        "min.insync.replicas",
    }


def test_a_topic_the_broker_does_not_describe_is_unverified() -> None:
    described = [DescribeConfigsResponse_v1(throttle_time_ms=0, resources=[])]
    check = check_topic_configs(topic_states(_metadata(), described), PRODUCTION)
    assert check.refusals == []
    assert len(check.unverified) == len(ALL_TOPICS)
