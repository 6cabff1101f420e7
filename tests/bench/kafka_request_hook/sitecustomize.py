"""Counts the Kafka requests of a bench's platform process, by type.

Python imports `sitecustomize` at start from the first folder on its path that has
one; the bench puts this folder first on the `PYTHONPATH` of every platform process
(`kafka_requests.py`). Only with `AWOOOP_BENCH_KAFKA_REQUESTS_DIR` set: then every
request aiokafka's connection sends is counted under its type's name, and `SIGUSR2`
writes the counts so far to `<dir>/<pid>.json` (with how many times it was asked,
so the bench can tell a fresh answer from an old one). The count is one dictionary
increment per request; nothing runs between signals.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal

FOLDER = os.environ.get("AWOOOP_BENCH_KAFKA_REQUESTS_DIR")


def install(folder: str) -> None:
    """Count this process's Kafka requests and write them to `folder` on `SIGUSR2`."""
    from aiokafka.conn import AIOKafkaConnection

    counts: dict[str, int] = {}
    asked = 0
    send = AIOKafkaConnection.send

    def counted_send(self, request, expect_response=True):  # type: ignore[no-untyped-def]
        name = type(request).__name__
        counts[name] = counts.get(name, 0) + 1
        return send(self, request, expect_response)

    def write(signum, frame):  # type: ignore[no-untyped-def]
        # Runs between two bytecodes of whatever the process was doing: nothing may
        # escape it, or that code would raise. The bench reports counts it never got.
        nonlocal asked
        asked += 1
        path = os.path.join(folder, f"{os.getpid()}.json")
        with contextlib.suppress(Exception):
            with open(path + ".part", "w", encoding="utf-8") as out:
                json.dump({"asked": asked, "counts": counts}, out)
            os.replace(path + ".part", path)

    AIOKafkaConnection.send = counted_send  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR2, write)


if FOLDER:
    install(FOLDER)
