"""Settings from environment variables, the one place that names them.

| variable | meaning | default |
|---|---|---|
| `AWOOOP_KAFKA_BOOTSTRAP` | Kafka bootstrap servers, `host:port[,…]` | the embedded broker |
| `AWOOOP_POSTGRES_URL` | where Postgres is; services log in as their own role | admin URL's host |
| `AWOOOP_DATABASE_URL` | Postgres **admin** URL: operator commands only | embedded Postgres |
| `AWOOOP_REDIS_URL` | Redis URL | embedded Redis |
| `AWOOOP_DB_PASSWORD_<SERVICE>` | password of role `awooop_<service>` | none (loopback trust) |
| `AWOOOP_HOME` | folder of the embedded stack's data, logs and `stack.json` | `.awooop` upward |
| `AWOOOP_KAFKA_SESSION_TIMEOUT_MS` | consumer-group session timeout | 10000 (dev, tests: 2000) |
| `AWOOOP_KAFKA_HEARTBEAT_MS` | consumer-group heartbeat interval | 3000 (300 in dev and tests) |
| `AWOOOP_KAFKA_MAX_POLL_RECORDS` | records per `getmany` | 500 |
| `AWOOOP_KAFKA_REPLICATION_FACTOR` | replicas of every registry topic | 3 (embedded broker: 1) |
| `AWOOOP_KAFKA_MIN_INSYNC_REPLICAS` | `min.insync.replicas` of every topic | 2 (embedded: 1) |
| `AWOOOP_KAFKA_FETCH_MAX_WAIT_MS` | longest a fetch waits for records | 500 (dev, tests: 25) |
| `AWOOOP_KAFKA_LINGER_MS` | a busy consumer waits this long for more records per batch | 5 |
| `AWOOOP_EVENT_LOOP` | a service process's event loop: `uvloop` or `asyncio` | `uvloop` |
| `AWOOOP_LOG_LEVEL` | `debug`, `info`, `warning`, `error` | `info` |
| `AWOOOP_LOG_FORMAT` | `json` or `console`; console under a TTY by default | `json` |
| `AWOOOP_EPOCH_CHECK_SECONDS` | how often a service re-reads the broker epoch | 10 |
| `AWOOOP_INBOX_MAINTENANCE_SECONDS` | how often a service makes and drops inbox partitions | 3600 |
| `AWOOOP_API_DB_PASSWORD` | password of the query API's role `awooop_api` | none |
| `AWOOOP_API_JWT_SECRET` | HS256 secret of API bearer tokens | `<home>/api-jwt.secret` |
| `AWOOOP_HEALTH_PORT` | port of a service's `/healthz` and `/readyz` | none (not served) |
| `AWOOOP_HEALTH_HOST` | address the health endpoints bind | `127.0.0.1` |
| `AWOOOP_CRASH_LINGER_SECONDS` | how long a crashed process stays unready before it exits 70 | 1 |
| `AWOOOP_APPROVAL_API_PORT` | port of the approval command API | none (`awooop up`: a free one) |
| `AWOOOP_APPROVAL_API_HOST` | address the approval command API binds | `127.0.0.1` |
| `AWOOOP_RUNTIME_API_PORT` | port of the runtime command API | none (`awooop up`: a free one) |
| `AWOOOP_RUNTIME_API_HOST` | address the runtime command API binds | `127.0.0.1` |
| `AWOOOP_CONTRACT_SIGNING_KEY` | contract signing key spec (approval only) | generated |
| `AWOOOP_CONTRACT_SIGNATURES` | signers per family, e.g. `policy=3,agent=2` | see decision 0025 |
| `AWOOOP_CONTRACT_VERIFYING_KEYS` | key ring verifying published contracts | home's file |
| `AWOOOP_EMBEDDED_BROKER_WARN_MB` | `dev status` warns past this estimate of broker memory | 512 |
| `AWOOOP_EMBEDDED_POSTGRES_DURABLE` | embedded Postgres flushes each commit (fsync) | off |
| `AWOOOP_EMBEDDED_POSTGRES_STATEMENT_STATS` | it loads `pg_stat_statements` | off |
| `AWOOOP_MCP_CALL_TIMEOUT_SECONDS` | longest one MCP tool call (or tool listing) may take | 30 |
| `AWOOOP_MCP_OPEN_TIMEOUT_SECONDS` | longest opening an MCP session may take | 20 |
| `AWOOOP_MCP_CONCURRENCY` | MCP calls the gateway's executor runs at once | 8 |
| `AWOOOP_MCP_TOOL_LIST_REFRESH_SECONDS` | MCP tools are listed again at least this often | 300 |
| `AWOOOP_SECRETS_ROOT` | folder of mounted tenant secrets, one folder per project | none |
| `AWOOOP_MCP_RETRY_DELAY_SECONDS` | wait before an approved call's retry | 0.5 |
| `AWOOOP_APPROVAL_TOKEN_SIGNING_KEY` | approval token signing key (approval only) | generated |
| `AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS` | ring verifying approval tokens | home's file |
| `AWOOOP_APPROVAL_TOKEN_TTL_SECONDS` | how long a granted approval token is valid | 600 |
| `AWOOOP_APPROVAL_EXPIRY_CHECK_SECONDS` | how often expiries are checked | 1 |

A URL that is not in the environment is read from the embedded stack's
`stack.json` (written by `awooop dev up`), so the CLI and the tests find the
embedded pieces without exporting anything. Environment URLs always win.
Each URL is looked up when it is first needed, so a command that needs no
broker (`awooop token`) never asks for one. Only `Settings.from_env(admin=True)`
(operator commands) keeps the admin URL; a service's settings know where
Postgres is and log in with the service's own role.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit

from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.security.signing_keys import InvalidKey, KeyRing

SERVICES = ("ingress", "runtime", "mcp_gateway", "approval", "projector")
"""Every service; each owns a Postgres schema of the same name and a role `awooop_<name>`."""

DEV_FETCH_MAX_WAIT_MS = 25
"""The embedded broker answers a parked fetch only at its own polling step, not when a
record arrives, so a long fetch wait adds ~100 ms to every hop (docs/performance.md)."""
DEFAULT_LINGER_MS = 5
"""A busy consumer's wait for more records before a batch (decision 0064)."""
APPROVAL_TOKEN_SIGNING_KEY_FILE = "approval-token-signing.key"  # noqa: S105 (a file name)
"""The embedded stack's development key of approval tokens: the platform launcher hands
it to the approval process only."""
APPROVAL_TOKEN_VERIFYING_KEYS_FILE = "approval-token-verifying.keys"  # noqa: S105


_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message says which and how to set it."""


def state_dir(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The embedded stack's folder: `AWOOOP_HOME`, else the nearest existing `.awooop`
    folder in the working directory or one above it (as git finds `.git`), else
    `./.awooop`."""
    env = os.environ if env is None else env
    if home := env.get("AWOOOP_HOME"):
        return Path(home).resolve()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".awooop"
        if candidate.is_dir():
            return candidate
    return here / ".awooop"


def _stack_urls(home: Path) -> dict[str, str]:
    path = home / "stack.json"
    if not path.exists():
        return {}
    recorded = json.loads(path.read_text())
    return {piece: info["url"] for piece, info in recorded.get("pieces", {}).items()}


@dataclass(frozen=True)
class KafkaSettings:
    """Kafka client settings shared by every producer and consumer."""

    bootstrap: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_records: int = 500
    request_timeout_ms: int = 30_000
    fetch_max_wait_ms: int = 500
    linger_ms: int = 0
    """How long a consumer that is busy (its last fetch brought records) waits for more
    before it applies a batch; a record that finds the consumer idle is applied at once."""
    replication_factor: int = 3
    """Replicas of every registry topic (1 on the embedded broker)."""
    min_insync_replicas: int = 2
    """`min.insync.replicas` of every registry topic (1 on the embedded broker)."""


def _missing(var: str, piece: str, home: Path) -> SettingsError:
    return SettingsError(
        f"{var} is not set and no embedded {piece} is recorded in {home}/stack.json: "
        "export it, or start the embedded stack with `awooop dev up`"
    )


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to reach its infrastructure.

    A piece not configured is `None` here and raises `SettingsError` (naming the
    variable) only when something asks for it: `kafka`, `postgres_location`,
    `admin_url`.
    """

    home: Path
    kafka_config: KafkaSettings | None = None
    postgres_url: str | None = None
    """Where Postgres is; its credentials are never used (each role brings its own)."""
    postgres_source: str = "AWOOOP_POSTGRES_URL"
    """Where `postgres_url` came from, named when it is refused."""
    redis_url: str | None = None
    database_url: str | None = None
    """The admin URL, held only by operator commands (`from_env(admin=True)`)."""
    log_level: str = "info"
    log_format: str = "json"
    epoch_check_seconds: float = 10.0
    inbox_maintenance_seconds: float = 3600.0
    db_passwords: dict[str, str] = field(default_factory=dict)
    api_db_password: str | None = None
    api_jwt_secret: str | None = None
    embedded_broker_warn_mb: float = 512.0
    """The embedded broker keeps every record in memory: `dev status` warns past this."""
    approval_api_port: int | None = None
    approval_api_host: str = "127.0.0.1"
    runtime_api_port: int | None = None
    """Port of the runtime's command API (run cancel, budget reset); not served when None."""
    runtime_api_host: str = "127.0.0.1"
    contract_signing_key: str | None = field(default=None, repr=False)
    """The spec of the key that signs published contracts; held by the approval process
    only, so it is read from the environment and never from a file of the shared home."""
    contract_verifying_keys: str | None = None
    contract_required_signatures: dict[str, int] = field(default_factory=dict)
    """Signers a family's revision needs to activate, where the defaults do not hold
    (the approval service's; decision 0025)."""
    """The key ring (``awooop.security.signing_keys.KeyRing`` spec) every contract reader
    verifies publication signatures with: public keys only in the Ed25519 setup."""
    mcp_call_timeout_seconds: float = 30.0
    """The longest one MCP tool call, or one listing of a server's tools, may take."""
    mcp_open_timeout_seconds: float = 20.0
    """The longest opening an MCP session may take: start or reach the server, shake
    hands, list its tools."""
    mcp_concurrency: int = 8
    """MCP calls the gateway's executor has in flight at most."""
    mcp_tool_list_refresh_seconds: float = 300.0
    """An MCP server's tool listing (gate 1's pins) is never older than this."""
    mcp_retry_delay_seconds: float = 0.5
    """The wait before an approved call is tried again after a transient failure."""
    approval_token_signing_key: str | None = field(default=None, repr=False)
    """The spec of the key that signs approval tokens; held by the approval process only,
    so it is read from the environment and never from a file of the shared home."""
    approval_token_verifying_keys: str | None = field(default=None, repr=False)
    """The key ring (``KeyRing`` spec) the gateway verifies approval tokens with: public
    keys only in the Ed25519 setup (with HS256 it holds the secret: hence no repr)."""
    approval_token_ttl_seconds: float = 600.0
    approval_expiry_check_seconds: float = 1.0
    secrets_root: Path | None = None
    """The folder of mounted tenant secrets: ``file:NAME`` reads ``<root>/<project>/NAME``,
    ``k8s:SECRET/KEY`` reads ``<root>/<project>/SECRET/KEY``; None: only ``env:``."""

    @property
    def kafka(self) -> KafkaSettings:
        """The Kafka settings; `SettingsError` when no broker is configured."""
        if self.kafka_config is None:
            raise _missing("AWOOOP_KAFKA_BOOTSTRAP", "broker", self.home)
        return self.kafka_config

    def contract_key_ring(self) -> KeyRing:
        """The ring contract readers verify with; `SettingsError` when missing or invalid."""
        if not self.contract_verifying_keys:
            raise SettingsError(
                "AWOOOP_CONTRACT_VERIFYING_KEYS is not set and there is no "
                f"{self.home}/contract-verifying.keys: export it, or start the embedded "
                "stack with `awooop dev up`"
            )
        try:
            return KeyRing.from_spec(self.contract_verifying_keys)
        except InvalidKey as invalid:
            raise SettingsError(f"AWOOOP_CONTRACT_VERIFYING_KEYS: {invalid}") from None

    def approval_token_ring(self) -> KeyRing:
        """The ring the gateway verifies approval tokens with; `SettingsError` when missing
        or invalid."""
        if not self.approval_token_verifying_keys:
            raise SettingsError(
                "AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS is not set and there is no "
                f"{self.home}/approval-token-verifying.keys: export it, or start the "
                "embedded stack with `awooop dev up`"
            )
        try:
            return KeyRing.from_spec(self.approval_token_verifying_keys)
        except InvalidKey as invalid:
            raise SettingsError(f"AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS: {invalid}") from None

    @property
    def postgres_location(self) -> str:
        """Where Postgres is; `SettingsError` when it is not configured."""
        if self.postgres_url is None:
            raise _missing("AWOOOP_POSTGRES_URL", "postgres", self.home)
        return self.postgres_url

    @property
    def admin_url(self) -> str:
        """The admin URL of an operator command; `SettingsError` when it is not held."""
        if self.database_url is None:
            raise SettingsError(
                "this command needs the Postgres admin URL: export AWOOOP_DATABASE_URL, "
                "or start the embedded stack with `awooop dev up`"
            )
        return self.database_url

    @property
    def role_passwords(self) -> dict[str, str]:
        """Passwords of roles that are not services (`awooop_api`)."""
        return {"awooop_api": self.api_db_password} if self.api_db_password else {}

    def api_database_url(self) -> str:
        """The URL the query API logs in with: role `awooop_api`, never an owner."""
        return self._role_url("awooop_api", self.api_db_password)

    def _role_url(self, role: str, password: str | None) -> str:
        """`role_url` of the Postgres location; a refusal names where the URL came from."""
        try:
            return role_url(self.postgres_location, role, password)
        except SettingsError as error:
            raise SettingsError(f"{self.postgres_source}: {error}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, admin: bool = False) -> Settings:
        """Read the environment, falling back to the embedded stack's recorded URLs.

        `admin` keeps the admin URL (`AWOOOP_DATABASE_URL`): operator commands only.
        """
        env = dict(os.environ if env is None else env)
        home = state_dir(env)
        recorded = _stack_urls(home)
        admin_url = env.get("AWOOOP_DATABASE_URL") or recorded.get("postgres")
        location = env.get("AWOOOP_POSTGRES_URL") or admin_url
        bootstrap = env.get("AWOOOP_KAFKA_BOOTSTRAP") or recorded.get("broker")
        kafka = None
        if bootstrap:
            # The embedded broker (however its URL arrived) gets the development timings.
            dev = bootstrap == recorded.get("broker")
            kafka = KafkaSettings(
                bootstrap=bootstrap,
                session_timeout_ms=int(
                    env.get("AWOOOP_KAFKA_SESSION_TIMEOUT_MS", 2_000 if dev else 10_000)
                ),
                heartbeat_interval_ms=int(
                    env.get("AWOOOP_KAFKA_HEARTBEAT_MS", 300 if dev else 3_000)
                ),
                max_poll_records=int(env.get("AWOOOP_KAFKA_MAX_POLL_RECORDS", 500)),
                replication_factor=int(env.get("AWOOOP_KAFKA_REPLICATION_FACTOR", 1 if dev else 3)),
                min_insync_replicas=int(
                    env.get("AWOOOP_KAFKA_MIN_INSYNC_REPLICAS", 1 if dev else 2)
                ),
                fetch_max_wait_ms=int(
                    env.get("AWOOOP_KAFKA_FETCH_MAX_WAIT_MS", DEV_FETCH_MAX_WAIT_MS if dev else 500)
                ),
                linger_ms=int(env.get("AWOOOP_KAFKA_LINGER_MS", DEFAULT_LINGER_MS)),
            )
        source = next(
            (v for v in ("AWOOOP_POSTGRES_URL", "AWOOOP_DATABASE_URL") if env.get(v)),
            "the embedded stack's recorded Postgres URL",
        )
        passwords = {
            service: env[f"AWOOOP_DB_PASSWORD_{service.upper()}"]
            for service in SERVICES
            if env.get(f"AWOOOP_DB_PASSWORD_{service.upper()}")
        }
        return cls(
            home=home,
            kafka_config=kafka,
            postgres_url=_location(location, source) if location else None,
            postgres_source=source,
            redis_url=env.get("AWOOOP_REDIS_URL") or recorded.get("redis"),
            database_url=admin_url if admin else None,
            log_level=env.get("AWOOOP_LOG_LEVEL", "info"),
            log_format=env.get("AWOOOP_LOG_FORMAT", "json"),
            epoch_check_seconds=float(env.get("AWOOOP_EPOCH_CHECK_SECONDS", 10)),
            inbox_maintenance_seconds=float(env.get("AWOOOP_INBOX_MAINTENANCE_SECONDS", 3600)),
            db_passwords=passwords,
            api_db_password=env.get("AWOOOP_API_DB_PASSWORD") or None,
            api_jwt_secret=env.get("AWOOOP_API_JWT_SECRET") or _read_secret(home),
            embedded_broker_warn_mb=float(env.get("AWOOOP_EMBEDDED_BROKER_WARN_MB", 512)),
            approval_api_port=int(port) if (port := env.get("AWOOOP_APPROVAL_API_PORT")) else None,
            approval_api_host=env.get("AWOOOP_APPROVAL_API_HOST", "127.0.0.1"),
            runtime_api_port=int(port) if (port := env.get("AWOOOP_RUNTIME_API_PORT")) else None,
            runtime_api_host=env.get("AWOOOP_RUNTIME_API_HOST", "127.0.0.1"),
            contract_signing_key=env.get("AWOOOP_CONTRACT_SIGNING_KEY") or None,
            contract_required_signatures=_signature_counts(
                env.get("AWOOOP_CONTRACT_SIGNATURES", "")
            ),
            contract_verifying_keys=env.get("AWOOOP_CONTRACT_VERIFYING_KEYS")
            or _read_file(home / "contract-verifying.keys"),
            mcp_call_timeout_seconds=_positive(env, "AWOOOP_MCP_CALL_TIMEOUT_SECONDS", 30.0),
            mcp_open_timeout_seconds=_positive(env, "AWOOOP_MCP_OPEN_TIMEOUT_SECONDS", 20.0),
            mcp_concurrency=int(_positive(env, "AWOOOP_MCP_CONCURRENCY", 8, whole=True)),
            mcp_tool_list_refresh_seconds=_positive(
                env, "AWOOOP_MCP_TOOL_LIST_REFRESH_SECONDS", 300.0
            ),
            secrets_root=Path(root) if (root := env.get("AWOOOP_SECRETS_ROOT")) else None,
            mcp_retry_delay_seconds=_non_negative(env, "AWOOOP_MCP_RETRY_DELAY_SECONDS", 0.5),
            approval_token_signing_key=env.get("AWOOOP_APPROVAL_TOKEN_SIGNING_KEY") or None,
            approval_token_verifying_keys=env.get("AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS")
            or _read_file(home / APPROVAL_TOKEN_VERIFYING_KEYS_FILE),
            approval_token_ttl_seconds=_positive(env, "AWOOOP_APPROVAL_TOKEN_TTL_SECONDS", 600.0),
            approval_expiry_check_seconds=_positive(
                env, "AWOOOP_APPROVAL_EXPIRY_CHECK_SECONDS", 1.0
            ),
        )

    def with_kafka(self, **changes: int | str) -> Settings:
        """A copy with some Kafka settings replaced (tests shorten group timeouts)."""
        return replace(self, kafka_config=replace(self.kafka, **changes))  # type: ignore[arg-type]

    def without_admin(self) -> Settings:
        """A copy that no longer holds the admin URL (what a service process keeps)."""
        return replace(self, database_url=None)

    def service_database_url(self, service: str) -> str:
        """The URL a service logs in with: Postgres's location, the service's own role."""
        if not _SERVICE_NAME.fullmatch(service):
            raise SettingsError(f"service name {service!r} does not match {_SERVICE_NAME.pattern}")
        return self._role_url(f"awooop_{service}", self.db_passwords.get(service))


def _location(url: str, source: str) -> str:
    """`url` without its credentials; `SettingsError` naming `source` when it cannot be
    split at all (an unclosed IPv6 bracket), since its password could not be taken out."""
    try:
        return without_credentials(url)
    except ValueError as error:
        raise SettingsError(f"{source}: the Postgres URL cannot be read: {error}") from None


def _signature_counts(text: str) -> dict[str, int]:
    """``family=count`` pairs separated by commas; `SettingsError` names a bad pair."""
    counts: dict[str, int] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        family, _, count = pair.partition("=")
        family = family.strip()
        if family not in CONTRACT_FAMILIES or not count.strip().isdigit():
            raise SettingsError(
                f"AWOOOP_CONTRACT_SIGNATURES: {pair!r} is not <family>=<count> with a family "
                f"of {', '.join(CONTRACT_FAMILIES)}"
            )
        if int(count) < 1:
            raise SettingsError(f"AWOOOP_CONTRACT_SIGNATURES: {family} needs at least 1 signer")
        counts[family] = int(count)
    return counts


def _positive(env: Mapping[str, str], var: str, default: float, *, whole: bool = False) -> float:
    """A positive number from `var` (a whole one when `whole`), else `default`;
    `SettingsError` naming the variable otherwise."""
    text = env.get(var, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        kind = "a positive whole number" if whole else "a positive number of seconds"
        raise SettingsError(f"{var}={text!r} is not {kind}")
    return value


def _non_negative(env: Mapping[str, str], var: str, default: float) -> float:
    """A number of seconds from `var`, zero allowed, else `default`; `SettingsError`
    naming the variable otherwise."""
    text = env.get(var, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SettingsError(f"{var}={text!r} is not a number of seconds, zero or more")
    return value


def _read_secret(home: Path) -> str | None:
    return _read_file(home / "api-jwt.secret")


def _read_file(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


LOGIN_QUERY_KEYS = frozenset({"user", "password", "passfile"})
"""Query parameters that say who logs in (libpq's, which asyncpg and SQLAlchemy read):
credentials as much as the part before `@`."""


def without_credentials(url: str) -> str:
    """`url` with any user and password removed, from before the `@` and from the query:
    where Postgres is, not who logs in."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in _query(parts) if k not in LOGIN_QUERY_KEYS]
    return _joined(parts, parts.netloc.rpartition("@")[2], query)


def role_url(location: str, role: str, password: str | None) -> str:
    """`location` with its credentials replaced by `role` (and `password`, when given).

    A URL that names its host in the query (`?host=/folder&port=5432`, a Unix socket in
    libpq's form) keeps an empty host, so the socket is still what the role connects
    to, and a port written before the path moves into the query beside it. Any other
    URL without a host gets `127.0.0.1`, with the query's port, if any, as its own. A
    URL naming a host in both places is refused: asyncpg would follow one, SQLAlchemy
    the other. `SettingsError` for that.
    """
    try:
        parts = urlsplit(location)
        port = parts.port
    except ValueError as error:
        raise SettingsError(f"the Postgres URL cannot be read: {error}") from None
    query = [(k, v) for k, v in _query(parts) if k not in LOGIN_QUERY_KEYS]
    names = {k for k, _ in query}
    if "host" in names:
        if parts.hostname:
            raise SettingsError(
                f"the Postgres URL names a host twice: {parts.hostname!r} and in its query"
            )
        host = ""
        if port is not None and "port" not in names:
            query.append(("port", str(port)))
        port = None
    else:
        host = parts.hostname or "127.0.0.1"
        if port is None and not parts.hostname and "port" in names:
            text = dict(query)["port"]
            if not text.isdigit():
                raise SettingsError(f"the Postgres URL's port {text!r} is not a number")
            port = int(text)
            query = [(k, v) for k, v in query if k != "port"]
    if ":" in host:
        host = f"[{host}]"
    credentials = quote(role, safe="")
    if password:
        credentials += ":" + quote(password, safe="")
    netloc = f"{credentials}@{host}" + (f":{port}" if port is not None else "")
    return _joined(parts, netloc, query)


def socket_url(folder: str, port: int, database: str = "postgres", user: str = "postgres") -> str:
    """The URL of a Postgres Unix socket: `.s.PGSQL.<port>` in `folder`, libpq's form."""
    query = [("host", folder), ("port", str(port))]
    return _joined(
        urlsplit(f"postgresql:///{quote(database, safe='')}"), f"{quote(user, safe='')}@", query
    )


def _query(parts: SplitResult) -> list[tuple[str, str]]:
    return parse_qsl(parts.query, keep_blank_values=True)


def _joined(parts: SplitResult, netloc: str, query: list[tuple[str, str]]) -> str:
    """`parts` around `netloc` and `query`, with `//` even when the netloc is empty
    (`urlunsplit` drops it for schemes it does not know, which would turn
    `postgresql://@/db?host=` into a different URL)."""
    url = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        url += "?" + urlencode(query, safe="/", quote_via=quote)
    if parts.fragment:
        url += f"#{parts.fragment}"
    return url


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy-style URL (`postgresql+asyncpg://`) as a plain DSN asyncpg accepts."""
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def sqlalchemy_url(url: str) -> str:
    """A plain Postgres URL as SQLAlchemy's asyncpg URL."""
    return "postgresql+asyncpg://" + url.partition("://")[2]
