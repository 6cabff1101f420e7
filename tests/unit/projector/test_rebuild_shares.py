"""How a rebuild shares the projector's partitions out among its loaders."""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition

from awooop.projector.rebuild_load import share_out

pytestmark = pytest.mark.unit

PARTITIONS = [TopicPartition(t, p) for t in ("a", "b") for p in range(12)]


def test_every_partition_goes_to_exactly_one_loader() -> None:
    shares = share_out(PARTITIONS, {}, 5)
    assert len(shares) == 5
    owned = [tp for share in shares for tp in share]
    assert sorted(owned) == sorted(PARTITIONS)
    assert len(owned) == len(set(owned))


def test_loaders_get_about_the_same_number_of_records() -> None:
    sizes = {tp: (1000 if tp.partition == 0 else 10) for tp in PARTITIONS}
    shares = share_out(PARTITIONS, sizes, 2)
    loads = sorted(sum(sizes[tp] for tp in share) for share in shares)
    assert loads == [1110, 1110]  # each big partition alone with eleven small ones


def test_no_loader_without_partitions() -> None:
    assert share_out(PARTITIONS[:2], {}, 4) == [(PARTITIONS[0],), (PARTITIONS[1],)]
    assert share_out(PARTITIONS[:3], {}, 1) == [tuple(PARTITIONS[:3])]
