"""Replaying dead letters into their own group's handler, each in its own transaction.

The record goes to the processor of the service that dead-lettered it, never
back onto its source topic (where every other consumer would see it again).
Each entry is one transaction on the admin connection: the replay row of the
entry is locked, then, inside a savepoint, the role and search path become
the service's (`SET LOCAL ROLE awooop_<service>`), so the handler writes
exactly as the service would, row-level security and grants included; the
outcome is stored in `awooop_ops.dlq_replays` in the same transaction.

Failures follow the consumer's rule (`is_poison`): a data error rolls the
savepoint back and the entry stays `failed` with its new error; anything else
is an outage and stops the replay (`DlqCommandError`), marking nothing.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from awooop.cli import dlq_state
from awooop.cli.dlq_entries import DlqEntry, original_record
from awooop.cli.migrate import SERVICE_APPS
from awooop.contracts.records.dead_letter import DLQ_HEADER_VALUE_SIZE
from awooop.contracts.registries.errors import E_DLQ_HANDLER
from awooop.infra.contracts.reader import load_stored_contracts
from awooop.infra.kafka.consumer import BatchProcessor, is_poison
from awooop.infra.kafka.records import PoisonRecord
from awooop.infra.postgres.errors import VersionConflict
from awooop.infra.postgres.event_store import MAX_CONFLICT_RETRIES
from awooop.infra.postgres.roles import quote_ident, role_name
from awooop.infra.runner import ServiceSpec

GROUP_PREFIX = "awooop."

APPLIED, SKIPPED, FAILED, UNREPLAYABLE = "applied", "skipped", "failed", "unreplayable"
WOULD_APPLY, WOULD_FAIL = "would-apply", "would-fail"


class DlqCommandError(RuntimeError):
    """A refusal or an outage of `awooop dlq`, in one line for the operator."""


@dataclass(frozen=True)
class ReplayTarget:
    """The group's own handler: its service's processor, schema and role."""

    group: str
    service: str
    processor: BatchProcessor


@dataclass(frozen=True, slots=True)
class EntryResult:
    """What one entry's replay did."""

    entry: DlqEntry
    outcome: str
    reason: str = ""


NOT_REPLAYABLE = {
    "awooop.ingress.outbound": (
        "outbound delivery is no batch processor to replay into; an undecodable outbound "
        "record can only be read (`awooop dlq list`), and the run it spoke for re-asked"
    ),
}
"""Groups of a service that are not its processor's, with why they cannot be replayed."""


def service_of(group: str) -> str:
    """The service whose processor serves `group`: `awooop.<service>`, or a group of it
    such as a rebuild's `awooop.<service>.<suffix>`."""
    service = group.removeprefix(GROUP_PREFIX).split(".", 1)[0]
    if not group.startswith(GROUP_PREFIX) or service not in SERVICE_APPS:
        known = ", ".join(GROUP_PREFIX + name for name in sorted(SERVICE_APPS))
        raise DlqCommandError(f"{group!r} is no service's consumer group (one of: {known})")
    return service


def replay_target(group: str, specs: Callable[[str], ServiceSpec] | None = None) -> ReplayTarget:
    """The processor of `group`'s service, built from its `spec()` outside any running
    service (`specs` maps a service to its spec; default: its `app.spec()`)."""
    if group in NOT_REPLAYABLE:
        raise DlqCommandError(f"{group}: {NOT_REPLAYABLE[group]}")
    service = service_of(group)
    spec = (specs or _app_spec)(service)
    if spec.processor is None or not spec.topics:
        raise DlqCommandError(f"{service} consumes nothing: no handler to replay {group} into")
    return ReplayTarget(group, spec.service, spec.processor(None))


def _app_spec(service: str) -> ServiceSpec:
    spec: ServiceSpec = importlib.import_module(SERVICE_APPS[service]).spec()
    return spec


def failure_text(error: BaseException) -> str:
    """The stored reason of a data error: its code first, as on the DLQ."""
    if isinstance(error, PoisonRecord):
        return str(error)
    return f"{E_DLQ_HANDLER.code}: {error!r}"


async def _enter_service(conn: asyncpg.Connection, service: str) -> None:
    await conn.execute(f"SET LOCAL ROLE {quote_ident(role_name(service))}")
    await conn.execute(f"SET LOCAL search_path = {quote_ident(service)}")


async def _leave_service(conn: asyncpg.Connection) -> None:
    await conn.execute("SET LOCAL ROLE NONE")
    await conn.execute("SET LOCAL search_path TO DEFAULT")


async def apply_once(conn: asyncpg.Connection, target: ReplayTarget, entry: DlqEntry) -> str | None:
    """Apply the entry's record inside a savepoint of the caller's transaction, as the
    service's role; None when it applied, else the data error that rolled it back.

    A version conflict is decided again, up to the consumer's bound; past it, and for
    any error that is not a data error, `DlqCommandError` (an outage)."""
    record = original_record(entry)
    processor = target.processor
    for _attempt in range(MAX_CONFLICT_RETRIES + 1):
        try:
            async with conn.transaction():
                await _enter_service(conn, target.service)
                # The contracts as the service last folded them decide the replay.
                await load_stored_contracts(processor, conn)
                if processor.handles(record):
                    await processor.process(conn, [processor.decode(record)])
        except VersionConflict:
            continue
        except Exception as error:
            if not is_poison(error):
                raise DlqCommandError(
                    f"outage while replaying {entry.origin} of {entry.group}, nothing marked: "
                    f"{type(error).__name__}: {error}"
                ) from error
            return failure_text(error)
        await _leave_service(conn)
        return None
    raise DlqCommandError(f"{entry.origin}: version conflicts past {MAX_CONFLICT_RETRIES} retries")


def _unreplayable(entry: DlqEntry) -> EntryResult:
    size = next((v.decode() for k, v in entry.headers if k == DLQ_HEADER_VALUE_SIZE), "?")
    return EntryResult(entry, UNREPLAYABLE, f"value dropped ({size} bytes): cannot be replayed")


async def replay_entry(
    conn: asyncpg.Connection, target: ReplayTarget, epoch: str, entry: DlqEntry, *, dry_run: bool
) -> EntryResult:
    """Replay one entry in its own transaction (rolled back when `dry_run`)."""
    if entry.value_dropped:
        return _unreplayable(entry)
    transaction = conn.transaction()
    await transaction.start()
    try:
        state = await dlq_state.locked_state(conn, epoch, entry)
        if state is not None and state.status == dlq_state.REPLAYED:
            await transaction.rollback()
            return EntryResult(entry, SKIPPED, "already replayed")
        error = await apply_once(conn, target, entry)
        if dry_run:
            await transaction.rollback()
            return EntryResult(entry, WOULD_FAIL if error else WOULD_APPLY, error or "")
        status = dlq_state.FAILED if error else dlq_state.REPLAYED
        await dlq_state.record(conn, epoch, entry, status, error)
        await transaction.commit()
    except BaseException:
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await transaction.rollback()  # the connection may be the thing that failed
        raise
    if error:
        return EntryResult(entry, FAILED, error)
    target.processor.committed()
    return EntryResult(entry, APPLIED)


def exit_code(results: list[EntryResult]) -> int:
    """0 when every selected entry is replayed (or would apply), 1 when some are not."""
    done = {APPLIED, SKIPPED, WOULD_APPLY}
    return 0 if all(r.outcome in done for r in results) else 1
