"""One step of a leased run: prepare under the lease, call the provider, commit under it.

A remote provider's call holds no transaction (hot-path rule 5): the step
checks its lease, reserves the step's budget and reads what the model must
see in one transaction, commits, calls the provider with nothing open, then
commits the answer in a second transaction only while the lease epoch still
holds. A step that lost its lease meanwhile writes nothing; its reservation,
keyed by (run, step), is reused by whichever process takes the step again.

A local provider (the scripted one) does no I/O, so its answer is computed and
committed in the first transaction: a scripted step costs one transaction. A
scripted step due in a consumer batch costs none of its own: the batch takes it in
its own transaction, behind a savepoint (`inline`, decision 0068).

Steps are taken in groups (`steps`): the leases of a group are checked and their
runs locked in one statement, each run decided in memory, and what the group
decided written in one statement per table (`_Saves`), all in one transaction. A
group that fails is taken again one step at a time, so one bad run never holds back
the others. A remote step's call is prepared in its group and handed back: the
caller `answer`s it with nothing held, and commits its answer in a transaction of
its own.

A transient provider failure (a 429 or 5xx the client's own retries did not
cure, a timeout) raises: the lease runs out and the claim loop retries the step
as a counted attempt. A permanent one fails the run with `E-LLM-FAILED`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from awooop.contracts.families.agent import Agent, ScriptedProvider
from awooop.contracts.families.run_state_machine import IllegalTransition
from awooop.contracts.registries.errors import E_LLM_CREDENTIAL, E_LLM_FAILED
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.logging import bind_context, get_logger
from awooop.infra.postgres.errors import is_database_outage, sqlstate
from awooop.runtime import kill_switch, step_requests
from awooop.runtime.adapters import budget_ledger, run_batch, run_events, runs
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.budgeting import BudgetHold, StepBudget, Usage
from awooop.runtime.domain.batch import Written
from awooop.runtime.domain.llm import Provider, ProviderError, StepRequest
from awooop.runtime.domain.machines import Machine, machine_for
from awooop.runtime.domain.outbound import messages_for
from awooop.runtime.domain.prompt import NewTurn
from awooop.runtime.domain.recording import record, record_outbound
from awooop.runtime.domain.run import (
    Decision,
    Run,
    StepPlan,
    decide_output,
    fail,
    give_up,
    plan_step,
    refused,
    refusing_illegal,
)
from awooop.runtime.domain.scripted import ScriptedChat
from awooop.runtime.providers import ProviderCatalogue
from awooop.runtime.structured_output import SchemaRefused, StructuredAnswer, complete_structured
from awooop.security.tenant_credentials import CredentialMissing

T = TypeVar("T")
log = get_logger(__name__)

OUTAGE_BACKOFF = 0.5
MAX_OUTAGE_BACKOFF = 5.0
DEFAULT_MAX_TOKENS = 1024
"""Output tokens a step may use when the budget leaves room for them."""


@dataclass(frozen=True)
class RemoteCall:
    """A prepared step waiting for its provider's answer, outside any transaction."""

    plan: StepPlan
    request: StepRequest
    hold: BudgetHold
    provider: Provider


@dataclass(frozen=True)
class Taken:
    """What a group of steps committed: the leases of the runs whose next step is due at
    once, and the remote calls it prepared, each still under its lease."""

    follow_ups: list[Lease]
    remote: list[tuple[Lease, RemoteCall]]


@dataclass(frozen=True)
class Inline:
    """What a consumer batch's transaction did with the steps it leased: how many it
    decided itself, the leases left for the step pool (remote steps, or every one when
    the batch's steps failed), the runs whose next step is due at once, and the tenants
    its charges left at their kill share. All of it holds only once the batch commits."""

    decided: int
    handed: list[Lease]
    follow_ups: list[Lease]
    crossed: list[tuple[str, str]]


@dataclass
class _Saves:
    """What the decisions of one transaction write, stored in one statement."""

    events: list[Any] = dataclasses.field(default_factory=list)
    written: list[Written] = dataclasses.field(default_factory=list)
    turns: list[NewTurn] = dataclasses.field(default_factory=list)
    spent: list[Any] = dataclasses.field(default_factory=list)
    """Runs whose reservations count as spent (ended otherwise than by their answer)."""

    async def flush(
        self, conn: asyncpg.Connection, owner: str, lease_seconds: float
    ) -> list[Lease]:
        """Store every decision; the leases of the runs whose next step is due at once."""
        if not self.written:
            return []
        if self.spent:
            await budget_ledger.settle_in_full(conn, self.spent)
        return await run_batch.save_steps(
            conn,
            run_events.stored(self.events),
            self.turns,
            self.written,
            owner=owner,
            lease_seconds=lease_seconds,
        )


class StepExecutor:
    """Takes the steps of the runs leased to `owner`."""

    def __init__(
        self,
        *,
        owner: str,
        contracts: ContractSource,
        providers: ProviderCatalogue,
        budget: StepBudget,
        clock: Any,
        service: str,
        lease_seconds: float,
        wake_relay: Any,
    ) -> None:
        self.owner = owner
        self._contracts = contracts
        self._providers = providers
        self._budget = budget
        self._clock = clock
        self._service = service
        self._lease_seconds = lease_seconds
        self._wake_relay = wake_relay
        self.committed = 0
        """Decisions committed (a step that lost its lease commits none)."""
        self.outage_retries = 0
        """Commits after an answer (and kills) retried because the database was out."""

    async def step(self, pool: asyncpg.Pool, lease: Lease) -> Lease | None:
        """Take the step `lease` is for, a remote call included; the next lease when the
        run goes on at once."""
        taken = await self._group(pool, [lease])
        for remote_lease, call in taken.remote:
            return await self.answer(pool, remote_lease, call)
        return taken.follow_ups[0] if taken.follow_ups else None

    async def steps(self, pool: asyncpg.Pool, leases: Sequence[Lease]) -> Taken:
        """Take the steps of `leases` together: what goes on at once, and the remote calls
        prepared (each to be `answer`ed with nothing held).

        A lone step's failure propagates (an outage is retried by the caller, anything
        else lets its lease run out). A group that fails in any way, an outage or a
        deadlock included, committed nothing: its steps are then taken one by one,
        concurrently, each through outages on its own, so a run whose own step fails (or
        keeps failing like an outage) holds back no other."""
        if len(leases) == 1:
            return await self._group(pool, leases)
        try:
            return await self._group(pool, leases)
        except Exception as error:
            log.warning("step_group_failed", steps=len(leases), error=repr(error))
        taken = await asyncio.gather(*(self._alone(pool, lease) for lease in leases))
        return Taken(
            [lease for t in taken for lease in t.follow_ups],
            [remote for t in taken for remote in t.remote],
        )

    async def _alone(self, pool: asyncpg.Pool, lease: Lease) -> Taken:
        try:
            return await self._through_outages(lambda: self._group(pool, [lease]))
        except Exception as error:
            log.warning("step_failed", run_id=str(lease.run_id), error=repr(error))
            return Taken([], [])

    async def _group(self, pool: asyncpg.Pool, leases: Sequence[Lease]) -> Taken:
        self._budget.begin_step()
        saves = _Saves()
        remote: list[tuple[Lease, RemoteCall]] = []
        async with pool.acquire() as conn, conn.transaction():
            held = await runs.holds_leases(conn, leases, self.owner)
            for lease in leases:
                run = held.get(lease)
                if run is None or not run.active:
                    continue  # the lease was lost, or the run ended meanwhile
                prepared = await self._prepare(conn, lease, run, saves)
                if prepared is not None:
                    remote.append((lease, prepared))
            follow_ups = await saves.flush(conn, self.owner, self._lease_seconds)
        self.committed += len(saves.written)
        if saves.written:
            self._wake_relay()
        try:
            await self._kill_spent_tenants(pool)
        except Exception as error:
            # The group committed: a failure from here on must not make it look failed
            # (taken again one by one, its follow-ups would be lost).
            log.error("kill_switch_failed", error=repr(error))
        return Taken(follow_ups, remote)

    async def inline(self, conn: asyncpg.Connection, leases: Sequence[Lease]) -> Inline:
        """Take, in the caller's open transaction, the steps of `leases` whose agent is
        scripted: a batch that leased a run decides its step before it commits.

        The steps run behind a savepoint. A failure of their own rolls back to it and
        hands every lease to the step pool, which takes them as it takes any leased step
        (one bad run then holds back no other); the batch's own writes stand. An outage
        propagates: the batch is retried whole."""
        self._budget.begin_step()
        held = await runs.holds_leases(conn, leases, self.owner)
        here = [
            lease
            for lease in leases
            if (run := held.get(lease)) is not None and run.active and self._is_scripted(run)
        ]
        if not here:
            return Inline(0, list(leases), [], [])
        saves = _Saves()
        try:
            async with conn.transaction():
                for lease in here:
                    if await self._prepare(conn, lease, held[lease], saves) is not None:
                        raise RuntimeError("a scripted agent's step prepared a remote call")
                follow_ups = await saves.flush(conn, self.owner, self._lease_seconds)
        except Exception as error:
            if is_database_outage(error) and not _lock_conflict(error):
                raise
            # A lock conflict (a deadlock with a pool group charging the same budget, a
            # lock or statement timeout) is the steps' own: the pool takes them again.
            log.warning("inline_steps_failed", steps=len(here), error=repr(error))
            return Inline(0, list(leases), [], [])
        taken = set(here)
        handed = [lease for lease in leases if lease not in taken]
        return Inline(len(saves.written), handed, follow_ups, self._budget.crossed())

    def _is_scripted(self, run: Run) -> bool:
        """The run's pinned agent answers from its script (no provider call)."""
        pinned = self._contracts.view.at(run.project_id, run.revision, Agent)
        return pinned is not None and isinstance(pinned.document.provider, ScriptedProvider)

    async def kill_spent(self, pool: asyncpg.Pool, crossed: Sequence[tuple[str, str]]) -> None:
        """Trip the kill switch of the tenants a committed batch's steps left spent."""
        await self._kill_spent_tenants(pool, crossed)

    async def answer(self, pool: asyncpg.Pool, lease: Lease, call: RemoteCall) -> Lease | None:
        """Ask the provider with nothing held, then commit its answer under the lease."""
        self._budget.begin_step()
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = await self._ask(call)
        latency_ms = int((loop.time() - started) * 1000)
        # From here on the model has answered: an outage retries the commit alone (never
        # the call), and the kill of a tenant the step found spent alone.

        async def commit() -> Lease | None:
            saves = _Saves()
            async with pool.acquire() as conn, conn.transaction():
                if not await self._commit(conn, lease, call, outcome, latency_ms, saves):
                    return None
                follow_ups = await saves.flush(conn, self.owner, self._lease_seconds)
            self.committed += 1
            return follow_ups[0] if follow_ups else None

        follow_up = await self._through_outages(commit)
        await self._kill_spent_tenants(pool)
        self._wake_relay()
        return follow_up

    async def _through_outages(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work()`, retried with capped backoff while the database is out."""
        backoff = OUTAGE_BACKOFF
        while True:
            try:
                return await work()
            except Exception as error:
                if not is_database_outage(error):
                    raise
                self.outage_retries += 1
                log.warning("step_commit_outage", error=repr(error), retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_OUTAGE_BACKOFF)

    async def _kill_spent_tenants(
        self, pool: asyncpg.Pool, crossed: Sequence[tuple[str, str]] | None = None
    ) -> None:
        """Trip the kill switch of tenants a committed step found spent (`crossed`, or
        what this task's steps noted), each in its own transaction after the step's
        (which holds its run and ledger rows): every active run of the tenant is
        cancelled. A tenant killed already stays killed, and any run of it still active
        (started and charged by a batch that committed after the kill) is cancelled."""
        for project, revision in self._budget.crossed() if crossed is None else crossed:

            async def kill(project: str = project, revision: str = revision) -> None:
                done = await kill_switch.kill_tenant(
                    pool,
                    project,
                    reason=f"the tenant's spend reached the kill share of budget {revision}",
                    budget_revision=revision,
                    now=self._clock(),
                    service=self._service,
                )
                if done.tripped or done.cancelled:
                    log.info(
                        "tenant_killed",
                        project_id=project,
                        tripped=done.tripped,
                        cancelled=done.cancelled,
                    )

            await self._through_outages(kill)

    async def _prepare(
        self, conn: asyncpg.Connection, lease: Lease, held: Run, saves: _Saves
    ) -> RemoteCall | None:
        """Decide the step of `held` (locked under `lease`) into `saves`, or prepare its
        remote call."""
        machine = machine_for(self._contracts.view, held.project_id)
        run = dataclasses.replace(held, machine=machine.table)
        with bind_context(project_id=run.project_id, run_id=str(run.run_id)):
            now = self._clock()
            if lease.timed_out or lease.attempt > lease.max_attempts:
                self._save(run, give_up(run, timed_out=lease.timed_out), saves)
                return None
            view = self._contracts.view
            pinned = view.at(run.project_id, run.revision, Agent)
            try:
                planned = plan_step(run, pinned.document if pinned is not None else None)
            except IllegalTransition as illegal:
                self._save(run, refused(run, machine.revision, illegal), saves)
                return None
            if isinstance(planned, Decision):
                self._save(run, planned, saves)
                return None
            try:
                provider = self._providers.provider(
                    run.project_id, run.revision, planned.agent, self._projects()
                )
            except CredentialMissing as missing:
                self._save(run, fail(planned.run, E_LLM_CREDENTIAL.code, missing.reason), saves)
                return None
            if isinstance(provider, ScriptedChat):
                await self._scripted(conn, run, machine, planned, provider, now, saves)
                return None
            request = await step_requests.remote(
                conn, self._contracts.view, planned, DEFAULT_MAX_TOKENS
            )
            hold = await self._budget.reserve(conn, planned, request, DEFAULT_MAX_TOKENS, now)
            if isinstance(hold, Decision):
                self._save(run, hold, saves)
                return None
            request = dataclasses.replace(request, max_tokens=hold.max_tokens)
            return RemoteCall(planned, request, hold, provider)

    async def _scripted(
        self,
        conn: asyncpg.Connection,
        run: Run,
        machine: Machine,
        plan: StepPlan,
        chat: ScriptedChat,
        now: dt.datetime,
        saves: _Saves,
    ) -> None:
        output = chat.answer(step_requests.scripted(plan, DEFAULT_MAX_TOKENS))
        charged = await self._budget.charge(conn, plan, output, now)
        if isinstance(charged, Decision):
            self._save(run, charged, saves)
            return
        decision = refusing_illegal(
            run, machine.revision, lambda _r: decide_output(plan, output, charged, now)
        )
        self._save(run, decision, saves)

    async def _ask(self, call: RemoteCall) -> StructuredAnswer | SchemaRefused | ProviderError:
        try:
            reserved = call.hold.reservation
            allowance = reserved.tokens if reserved is not None else None
            return await complete_structured(call.provider, call.request, allowance=allowance)
        except SchemaRefused as refused:
            return refused
        except ProviderError as error:
            if error.transient:
                raise
            return error

    async def _commit(
        self,
        conn: asyncpg.Connection,
        lease: Lease,
        call: RemoteCall,
        outcome: StructuredAnswer | SchemaRefused | ProviderError,
        latency_ms: int,
        saves: _Saves,
    ) -> bool:
        """Decide the answer into `saves`; false when the lease was lost meanwhile."""
        held = await runs.holds_lease(conn, lease, self.owner)
        if held is None or not held.active:
            return False  # lost meanwhile: the reservation waits for the step's next attempt
        now = self._clock()
        machine = machine_for(self._contracts.view, held.project_id)
        run = dataclasses.replace(held, machine=machine.table)
        plan = dataclasses.replace(
            call.plan, run=dataclasses.replace(call.plan.run, machine=machine.table)
        )
        usage = _usage(call, outcome)
        report = await self._budget.settle(conn, plan, call.hold, usage, latency_ms, now)
        if isinstance(outcome, ProviderError):
            decision = fail(plan.run, E_LLM_FAILED.code, outcome.reason, report)
        elif isinstance(outcome, SchemaRefused):
            decision = fail(plan.run, outcome.code, outcome.reason, report)
        else:
            output = outcome.output
            decision = refusing_illegal(
                run, machine.revision, lambda _r: decide_output(plan, output, report, now)
            )
        self._save(run, decision, saves)
        return True

    def _projects(self) -> set[str]:
        """Every project with an active contract (the credential namespaces in use)."""
        return {revision.project_id for revision in self._contracts.view.revisions}

    def _may_hold_reservation(self, run: Run) -> bool:
        """Only a remote step of a budgeted project reserves before it commits."""
        if self._contracts.view.budget(run.project_id) is None:
            return False
        return not self._is_scripted(run)

    def _save(self, run: Run, decision: Decision, saves: _Saves) -> None:
        """Record `decision` into `saves`, written when its transaction flushes them."""
        now = self._clock()
        moved, envelopes = record(
            decision, run.version, causation_id=None, now=now, service=self._service
        )
        said = messages_for(moved, decision.payloads, now)
        outbound = record_outbound(
            moved, said, str(moved.version), causation_id=None, now=now, service=self._service
        )
        saves.events += [*envelopes, *outbound]
        if not moved.active and self._may_hold_reservation(moved):
            # A run ending otherwise than by its answer (attempts spent, its timeout) may
            # have made the call its reservation paid for: the reservation counts as spent.
            saves.spent.append(moved.run_id)
        if moved.state == "completed":
            reply = envelopes[-1].payload.reply
            saves.turns.append(
                NewTurn(
                    moved.project_id,
                    moved.channel_type,
                    moved.chat_id,
                    moved.run_id,
                    "assistant",
                    reply,
                )
            )
        saves.written.append(
            Written(moved, envelopes[-1].event_id, saved=True, due=decision.step_due)
        )


def _lock_conflict(error: BaseException) -> bool:
    """A deadlock, serialization failure, lock or statement timeout: the statement lost
    a race, the connection and the transaction around its savepoint are fine."""
    state = sqlstate(error)
    return state[:2] == "40" or state in ("55P03", "57014")


def _usage(call: RemoteCall, outcome: StructuredAnswer | SchemaRefused | ProviderError) -> Usage:
    """What the step's calls used: a refused call's tokens are not known, so none."""
    if isinstance(outcome, StructuredAnswer):
        return Usage(
            outcome.output.model, outcome.tokens_in, outcome.tokens_out, outcome.schema_retries
        )
    if isinstance(outcome, SchemaRefused):
        return Usage(
            call.request.model, outcome.tokens_in, outcome.tokens_out, outcome.schema_retries
        )
    return Usage(call.request.model, 0, 0)
