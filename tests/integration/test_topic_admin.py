"""Topic start-up checks on the embedded broker: topics made with their configs, and a
topic someone made otherwise refused with the reason and the fix.

Break caught: topics created without whole-log retention (an audit replay that finds the
first weeks deleted), or a start-up that runs on a topic of another retention or
partition count.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from awooop.contracts.registries import service_names as svc
from awooop.contracts.registries.topics import MAX_MESSAGE_BYTES, Topic
from awooop.infra.kafka.admin import (
    TopicConfigMismatch,
    TopicPartitionMismatch,
    admin_client,
    drop_empty_topics,
    ensure_topics,
    partition_counts,
)
from support.infra import StackUrls, unique

pytestmark = pytest.mark.integration


def _topic(name: str, partitions: int = 3) -> Topic:
    return Topic(name, "project_id", partitions, svc.RUNTIME, (svc.PROJECTOR,))


async def _configs(urls: StackUrls, name: str) -> dict[str, str]:
    admin = admin_client(urls.settings().kafka)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    [(_code, _message, _type, _name, entries)] = response.resources
    return {entry[0]: entry[1] for entry in entries}


async def _create(urls: StackUrls, topic: NewTopic) -> None:
    admin = admin_client(urls.settings().kafka)
    await admin.start()
    try:
        await admin.create_topics([topic])
    finally:
        await admin.close()


async def test_missing_topics_are_made_with_their_configs_and_then_pass(
    kafka_ready: StackUrls,
) -> None:
    topic = _topic(unique("awooop.test.made."))
    settings = kafka_ready.settings().kafka
    await ensure_topics(settings, [topic])
    assert await _configs(kafka_ready, topic.name) == {
        "retention.ms": "-1",
        "cleanup.policy": "delete",
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "min.insync.replicas": "1",
    }
    await ensure_topics(settings, [topic])  # a second start finds nothing to change


async def test_a_topic_made_with_another_retention_refuses_the_start(
    kafka_ready: StackUrls,
) -> None:
    name = unique("awooop.test.week.")
    await _create(kafka_ready, NewTopic(name, 3, 1, topic_configs={"retention.ms": "604800000"}))
    with pytest.raises(TopicConfigMismatch) as refused:
        await ensure_topics(kafka_ready.settings().kafka, [_topic(name)])
    message = str(refused.value)
    assert message.startswith("E-TOPIC-CONFIG: ")
    assert f"{name} has retention.ms=604800000, wanted -1" in message
    assert f"--entity-name {name} --add-config retention.ms=-1" in message


async def test_a_topic_of_another_partition_count_refuses_the_start(
    kafka_ready: StackUrls,
) -> None:
    name = unique("awooop.test.parts.")
    await _create(kafka_ready, NewTopic(name, 2, 1))
    with pytest.raises(TopicPartitionMismatch, match=f"{name} has 2, registry says 3"):
        await ensure_topics(kafka_ready.settings().kafka, [_topic(name)])


async def test_an_empty_topic_of_another_partition_count_is_dropped_and_made_again(
    kafka_ready: StackUrls,
) -> None:
    """What a client's metadata request made on a broker that started empty: no record
    in it, so the recovery drops it and makes it as registered.

    Break caught: a recovery that refuses for good because a service still running asked
    for a topic first (or one that drops a topic without checking it is empty)."""
    name = unique("awooop.test.auto.")
    settings = kafka_ready.settings().kafka
    await _create(kafka_ready, NewTopic(name, 2, 1))
    with pytest.raises(TopicPartitionMismatch) as refused:
        await ensure_topics(settings, [_topic(name)])

    assert await drop_empty_topics(settings, refused.value.mismatches)

    await ensure_topics(settings, [_topic(name)])
    admin = admin_client(settings)
    await admin.start()
    try:
        assert (await partition_counts(admin))[name] == 3
    finally:
        await admin.close()


async def test_a_topic_that_holds_a_record_is_never_dropped(kafka_ready: StackUrls) -> None:
    name = unique("awooop.test.held.")
    settings = kafka_ready.settings().kafka
    await _create(kafka_ready, NewTopic(name, 2, 1))
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(name, b"kept", partition=1)
    finally:
        await producer.stop()

    assert not await drop_empty_topics(settings, [name])

    with pytest.raises(TopicPartitionMismatch, match=f"{name} has 2, registry says 3"):
        await ensure_topics(settings, [_topic(name)])
