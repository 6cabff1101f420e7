"""`awooop dev up | down | status`: the embedded pieces recorded in `<home>/stack.json`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from awooop.infra.embedded import broker, postgres, redis
from awooop.infra.embedded.processes import PieceInfo, StackStartError, port_open
from awooop.infra.settings import (
    APPROVAL_TOKEN_SIGNING_KEY_FILE,
    APPROVAL_TOKEN_VERIFYING_KEYS_FILE,
)
from awooop.security.signing_keys import generate_ed25519_keys, verifying_spec_of

PIECES = ("broker", "postgres", "redis")
CONTRACT_SIGNING_KEY_FILE = "contract-signing.key"
"""The development contract signing key in the stack's home (a key spec)."""
CONTRACT_VERIFYING_KEYS_FILE = "contract-verifying.keys"
"""The development key ring that verifies published contracts: the public half of
``CONTRACT_SIGNING_KEY_FILE``, which every reading service may hold."""
EXTERNAL_VARS = {
    "broker": "AWOOOP_KAFKA_BOOTSTRAP",
    "postgres": "AWOOOP_DATABASE_URL",
    "redis": "AWOOOP_REDIS_URL",
}

PieceState = Literal["running", "started", "stopped", "external"]


@dataclass(frozen=True)
class PieceStatus:
    piece: str
    state: PieceState
    url: str
    detail: str = ""


def _ensure_key_pair(home: Path, kid: str, signing_file: str, verifying_file: str) -> None:
    """An Ed25519 development key `kid` in `home`: its signing spec in `signing_file`
    (mode 0600), its verifying ring in `verifying_file`. An existing key is kept, and a
    ring it lacks is derived from it."""
    key = home / signing_file
    ring = home / verifying_file
    if not key.exists():
        pair = generate_ed25519_keys(kid)
        key.touch(mode=0o600)
        key.write_text(pair.signing_spec)
        ring.write_text(pair.verifying_spec)
    elif not ring.exists():
        # A home made before its readers verified: derive the public half once.
        ring.write_text(verifying_spec_of(key.read_text().strip()))


def _flag(env: dict[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise StackStartError("postgres", f"{name} must be on or off, not {value!r}")


class EmbeddedStack:
    """The embedded broker, Postgres and Redis of one `home` folder.

    `up()` is idempotent: pieces already running are kept, missing ones
    started. `down()` stops only what `stack.json` records. A piece whose URL
    is in the environment is external and never started or stopped here.
    """

    def __init__(
        self,
        home: Path,
        env: dict[str, str] | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.home = home
        self.logs = home / "logs"
        self.env = dict(os.environ if env is None else env)
        self.say = say

    @property
    def record_path(self) -> Path:
        return self.home / "stack.json"

    def recorded(self) -> dict[str, PieceInfo]:
        if not self.record_path.exists():
            return {}
        data = json.loads(self.record_path.read_text())
        return {name: PieceInfo.from_json(info) for name, info in data["pieces"].items()}

    def _record(self, pieces: dict[str, PieceInfo]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        body = {"pieces": {name: info.as_json() for name, info in pieces.items()}}
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2))
        tmp.replace(self.record_path)

    def _external(self, piece: str) -> str | None:
        return self.env.get(EXTERNAL_VARS[piece]) or None

    def up(self, fresh: bool = False) -> list[PieceStatus]:
        """Start whatever is not running; record each piece as soon as it runs.

        Postgres data next to a broker that starts empty is kept (a broker loss, which
        `awooop recover broker-reset` repairs); with `fresh` it is removed instead, so
        both start empty. `fresh` with a broker that keeps running is refused: its
        records belong to that data.
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        self._ensure_secrets()
        pieces = self.recorded()
        statuses: list[PieceStatus] = []
        fresh_broker = False
        if fresh and (url := self._external("postgres")):
            raise StackStartError(
                "postgres", "--fresh empties the embedded Postgres only, not " + url
            )

        if url := self._external("broker"):
            if fresh:
                raise StackStartError("broker", "--fresh needs the embedded broker, not " + url)
            statuses.append(PieceStatus("broker", "external", url))
        elif "broker" in pieces and broker.broker_alive(pieces["broker"]):
            if fresh:
                raise StackStartError(
                    "postgres",
                    "--fresh starts Postgres empty next to a new broker, and the broker is "
                    "running with records of the current data: `awooop dev down` first",
                )
            statuses.append(PieceStatus("broker", "running", pieces["broker"].url))
        else:
            # The port it had, when free: services still running after a broker loss
            # keep their bootstrap address and resume on their own after the recovery.
            known = pieces.get("broker")
            again = known.port if known and not port_open(known.port) else None
            pieces["broker"] = broker.start_broker(self.logs, again)
            self._record(pieces)
            fresh_broker = True
            statuses.append(PieceStatus("broker", "started", pieces["broker"].url))

        if url := self._external("postgres"):
            statuses.append(PieceStatus("postgres", "external", url))
        else:
            statuses.append(self._up_postgres(pieces, fresh_broker and fresh))

        if url := self._external("redis"):
            statuses.append(PieceStatus("redis", "external", url))
        elif "redis" in pieces and redis.redis_alive(pieces["redis"]):
            statuses.append(PieceStatus("redis", "running", pieces["redis"].url))
        else:
            pieces["redis"] = redis.start_redis(self.home / "redis", self.logs)
            self._record(pieces)
            statuses.append(PieceStatus("redis", "started", pieces["redis"].url))
        return statuses

    def _ensure_secrets(self) -> None:
        # The development signing key of API tokens (AWOOOP_API_JWT_SECRET wins).
        path = self.home / "api-jwt.secret"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        # The development keys of published contracts (AWOOOP_CONTRACT_SIGNING_KEY wins)
        # and of approval tokens (AWOOOP_APPROVAL_TOKEN_SIGNING_KEY wins): the platform
        # launcher hands each signing key to the approval process only; every reader
        # (the gateway for tokens) verifies with the public ring.
        _ensure_key_pair(
            self.home, "dev-contracts", CONTRACT_SIGNING_KEY_FILE, CONTRACT_VERIFYING_KEYS_FILE
        )
        _ensure_key_pair(
            self.home,
            "dev-approvals",
            APPROVAL_TOKEN_SIGNING_KEY_FILE,
            APPROVAL_TOKEN_VERIFYING_KEYS_FILE,
        )

    def _up_postgres(self, pieces: dict[str, PieceInfo], wipe: bool) -> PieceStatus:
        known = pieces.get("postgres")
        data_dir = Path(known.data_dir) if known else postgres.postgres_data_dir(self.home)
        detail = ""
        if wipe and postgres.has_cluster(data_dir):
            if known:
                postgres.stop_postgres(known)
            postgres.remove_cluster(data_dir)
            known = None
            detail = "--fresh: Postgres data removed, starting empty next to the new broker"
            self.say(detail)
        if known and postgres.postgres_alive(known):
            return PieceStatus("postgres", "running", known.url)
        port = known.port if known else None
        options = postgres.server_options(
            durable=_flag(self.env, "AWOOOP_EMBEDDED_POSTGRES_DURABLE"),
            statement_stats=_flag(self.env, "AWOOOP_EMBEDDED_POSTGRES_STATEMENT_STATS"),
        )
        pieces["postgres"] = postgres.start_postgres(data_dir, port, options=options)
        self._record(pieces)
        return PieceStatus("postgres", "started", pieces["postgres"].url, detail)

    def down(self) -> list[PieceStatus]:
        """Stop every recorded piece; leave external ones alone."""
        pieces = self.recorded()
        statuses = []
        for name in reversed(PIECES):
            info = pieces.pop(name, None)
            if info is None:
                continue
            if name == "postgres":
                postgres.stop_postgres(info)
            elif name == "redis":
                redis.stop_redis(info)
            else:
                broker.stop_broker(info)
            statuses.append(PieceStatus(name, "stopped", info.url))
            self._record(pieces)
        return statuses

    def purge(self) -> None:
        """`down`, then `remove_data`."""
        self.down()
        self.remove_data()

    def remove_data(self) -> Path:
        """Remove the Postgres data (of a stopped stack), also when it lives outside
        `home`: the folder under /var/tmp used when `nobody` cannot reach `home`."""
        data_dir = postgres.postgres_data_dir(self.home)
        postgres.remove_cluster(data_dir)
        if not data_dir.is_relative_to(self.home):
            shutil.rmtree(data_dir.parent, ignore_errors=True)
        return data_dir

    def status(self) -> list[PieceStatus]:
        pieces = self.recorded()
        alive = {
            "broker": broker.broker_alive,
            "postgres": postgres.postgres_alive,
            "redis": redis.redis_alive,
        }
        statuses = []
        for name in PIECES:
            if url := self._external(name):
                statuses.append(PieceStatus(name, "external", url))
            elif name in pieces and alive[name](pieces[name]):
                statuses.append(PieceStatus(name, "running", pieces[name].url))
            else:
                url = pieces[name].url if name in pieces else ""
                statuses.append(PieceStatus(name, "stopped", url))
        return statuses

    def urls(self) -> dict[str, str]:
        """The environment variables that point clients at this stack."""
        pieces = self.recorded()
        return {
            var: self._external(name) or pieces[name].url
            for name, var in EXTERNAL_VARS.items()
            if self._external(name) or name in pieces
        }
