"""One outbound record, from its envelope to its committed report.

1. Decide what needs no call: a record past ``deliver_before`` is ``expired``; one whose
   project has no binding for the chat, or whose bot token does not resolve, is
   ``failed`` with ``E-DELIVERY-CREDENTIAL``.
2. One transaction claims the ``deliveries`` row (``sending``). A row already there
   means an earlier attempt: a final row has its report, so nothing more happens; a row
   still ``sending`` was interrupted mid-call, and whether its message reached the chat
   is unknown, so it is reported ``failed`` with ``E-DELIVERY-UNKNOWN`` and never sent
   again. An outcome decided in step 1 is written in this same transaction.
3. The provider calls, with no transaction open (:mod:`.retry`).
4. One transaction records the outcome and appends the report.

A database outage in steps 2 and 4 is retried with capped backoff, the service unready
meanwhile; :meth:`OutboundWorker.handle` returns only once the outcome is committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import asyncpg

from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.families.channel_binding import TelegramChannel
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import (
    E_DELIVERY_CREDENTIAL,
    E_DELIVERY_REFUSED,
    E_DELIVERY_UNKNOWN,
)
from awooop.contracts.registries.service_names import INGRESS
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.logging import bind_context, get_logger
from awooop.infra.metrics import ServiceMetrics
from awooop.infra.postgres.errors import is_data_error
from awooop.infra.readiness import Readiness
from awooop.ingress.outbound import retry, store
from awooop.ingress.outbound.outages import OutageRetry
from awooop.ingress.outbound.providers import ChatApis
from awooop.ingress.outbound.rendering import Unrenderable, render
from awooop.ingress.outbound.reports import summary
from awooop.ingress.outbound.retry import DeliveryOutcome, RetryPolicy, Sleep, expired, failed
from awooop.ingress.outbound.settings import OutboundSettings
from awooop.security.tenant_credentials import CredentialMissing, resolve_credential

log = get_logger(__name__)

T = TypeVar("T")

OUTBOUND_OUTAGE = "outbound-outage"
INTERRUPTED = (
    "an earlier attempt was interrupted during its provider call: the message may have "
    "reached the chat, so it is not sent again"
)
UNRECORDABLE = "what the provider answered could not be recorded: the message may have been sent"

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OutboundWorker:
    """Delivers one outbound record at a time; see the module docstring.

    ``reported`` counts the reports this worker committed, by status; `on_reported` is
    called after each (the relay's wake-up, so the report is published at once).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        contracts: ContractSource,
        apis: ChatApis,
        settings: OutboundSettings,
        *,
        service: str = INGRESS,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        env: Mapping[str, str] | None = None,
        policy: RetryPolicy = retry.DEFAULT_POLICY,
        readiness: Readiness | None = None,
        metrics: ServiceMetrics | None = None,
        on_reported: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        self._contracts = contracts
        self._apis = apis
        self._settings = settings
        self._service = service
        self._clock = clock
        self._sleep = sleep
        self._env = os.environ if env is None else env
        self._policy = policy
        self._outage = OutageRetry(OUTBOUND_OUTAGE, readiness, sleep)
        self._metrics = metrics
        self._on_reported = on_reported
        self.reported: dict[str, int] = {}

    async def handle(self, request: Envelope[OutboundRequested]) -> None:
        """Deliver `request` at most once and commit its one report (or find it made)."""
        payload = request.payload
        with bind_context(
            project_id=request.project_id, run_id=str(payload.run_id), trace_id=request.trace_id
        ):
            decided, token = self._without_call(request)
            claimed = await self._durably(lambda conn: self._claim(conn, request, decided))
            if not isinstance(claimed, store.Claimed):
                self._reported(claimed)
                return
            assert token is not None  # no outcome was decided without a call
            try:
                outcome = await self._deliver(request, token, claimed.edit_target)
                done = await self._durably(lambda conn: self._finish(conn, request, outcome))
            except Exception as error:
                if not is_data_error(error):
                    raise
                # The row is claimed: it must end with a report, even when what happened
                # cannot be written as one (an answer out of shape). It may have posted.
                unknown = failed(
                    E_DELIVERY_UNKNOWN.code, f"{UNRECORDABLE} ({type(error).__name__})"
                )
                done = await self._durably(lambda conn: self._finish(conn, request, unknown))
            self._reported(done)

    def _without_call(
        self, request: Envelope[OutboundRequested]
    ) -> tuple[DeliveryOutcome, None] | tuple[None, str]:
        """The outcome decided before any call, or the bot token to call with."""
        payload = request.payload
        if self._clock() >= payload.deliver_before:
            return expired(payload.deliver_before), None
        view = self._contracts.view
        binding, why = view.outbound_binding(
            request.project_id, payload.channel_type, payload.chat_id
        )
        if binding is None:
            return failed(E_DELIVERY_CREDENTIAL.code, why), None
        try:
            token = resolve_credential(
                request.project_id,
                binding.document.channel.bot_token,
                env=self._env,
                secrets_root=self._settings.secrets_root,
                other_projects={revision.project_id for revision in view.revisions},
            )
        except CredentialMissing as missing:
            return failed(E_DELIVERY_CREDENTIAL.code, f"{binding.ref}: {missing.reason}"), None
        channel = binding.document.channel
        if isinstance(channel, TelegramChannel) and not token.startswith(f"{channel.bot_id}:"):
            # A Bot API token starts with its bot's id: another bot would answer the chat.
            reason = f"{binding.ref}: its bot_token is not a token of bot {channel.bot_id}"
            return failed(E_DELIVERY_CREDENTIAL.code, reason), None
        return None, token

    async def _claim(
        self,
        conn: asyncpg.Connection,
        request: Envelope[OutboundRequested],
        decided: DeliveryOutcome | None,
    ) -> store.Claimed | DeliveryOutcome | None:
        """`Claimed` to deliver, else the outcome reported now (None: reported before)."""
        claimed = await store.claim(conn, request)
        if isinstance(claimed, store.Claimed):
            return claimed if decided is None else await self._finish(conn, request, decided)
        if claimed == store.SENDING:
            interrupted = failed(E_DELIVERY_UNKNOWN.code, INTERRUPTED)
            return await self._finish(conn, request, interrupted)
        return None

    async def _deliver(
        self, request: Envelope[OutboundRequested], token: str, edit_target: str | None
    ) -> DeliveryOutcome:
        payload = request.payload
        calls = render(payload, edit_target)
        if isinstance(calls, Unrenderable):
            return failed(E_DELIVERY_REFUSED.code, calls.reason)
        return await retry.deliver(
            calls,
            self._apis.sender(payload.channel_type, token),
            deliver_before=payload.deliver_before,
            clock=self._clock,
            sleep=self._sleep,
            call_timeout=self._settings.timeout_seconds,
            policy=self._policy,
        )

    async def _finish(
        self,
        conn: asyncpg.Connection,
        request: Envelope[OutboundRequested],
        outcome: DeliveryOutcome,
    ) -> DeliveryOutcome | None:
        """`outcome` once its report is appended; None when another attempt reported."""
        moved = await store.finish(
            conn, request, outcome, occurred_at=self._clock(), service=self._service
        )
        return outcome if moved else None

    def _reported(self, outcome: DeliveryOutcome | None) -> None:
        """Count and log a committed report (never inside its transaction, which may be
        rolled back and retried)."""
        if outcome is None:
            return
        if self._on_reported is not None:
            self._on_reported()
        self.reported[outcome.status] = self.reported.get(outcome.status, 0) + 1
        if self._metrics is not None:
            name = f"outbound_{outcome.status}"
            self._metrics.counter(name, f"outbound messages reported {outcome.status}").add()
        if outcome.status == "failed":
            log.warning("delivery_failed", reason=outcome.reason, **summary(outcome))
        else:
            log.debug("delivery_reported", **summary(outcome))

    async def _durably(self, write: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `write` in one transaction, retrying outages until it commits.

        A data error is the record's own fault, not an outage: it is raised for the
        subscriber to dead-letter the record.
        """

        async def in_transaction() -> T:
            async with self._pool.acquire() as conn, conn.transaction():
                return await write(conn)

        return await self._outage.until_done(in_transaction, give_up=is_data_error)
