"""Onboarding a tenant: every contract file of its folder applied, published, signed by as
many development signers as its family needs (never the author) and activated, through the
approval service's command API as an operator would with `awooop contracts`
(`awooop contracts onboard`; its options: `awooop.cli.verbs.onboarding`).

Running it again changes nothing: a draft's request id comes from the file's content (an
unchanged file answers the revision it drafted), publishing and each signature take a
request id derived from that one (a repeat answers the first answer), and activating a
revision that is already active is reported as such, not refused. A changed file drafts,
signs and activates a new revision, superseding the one before.

Signers are development tokens minted with the home's API secret, one per subject, so
onboarding needs that secret and refuses a fixed ``AWOOOP_TOKEN``, which would sign as
one subject only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pydantic import ValidationError

from awooop.cli.contract_client import ContractClient, ContractCommandError, default_subject
from awooop.cli.contract_files import (
    SUFFIXES,
    ContractFile,
    ContractFileError,
    contract_paths,
    read_contract_file,
)
from awooop.cli.verbs.onboarding import DEVELOPMENT_SIGNERS
from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.infra.postgres.roles import quote_ident
from awooop.infra.settings import Settings

FAMILY_ORDER = ("runtime_run_state", "tool", "agent", "policy", "budget", "channel_binding")
"""Activation order within a project: what a contract names is active before it."""

STATE_REFUSED = "E-CONTRACT-STATE"
SIGNER_REFUSALS = ("E-CONTRACT-SIGNER-AUTHOR", "E-CONTRACT-SIGNER-REPEATED")


@dataclass(frozen=True, slots=True)
class Onboarded:
    """One contract after onboarding: its active revision, and whether this run activated it."""

    project: str
    contract: str
    family: str
    revision: int
    activated: bool
    signers: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for the person: what is active now."""
        head = f"{self.project}/{self.contract}: revision {self.revision}"
        if not self.activated:
            return f"{head} already active ({self.family})"
        return f"{head} active ({self.family}, signed by {', '.join(self.signers)})"


def onboard_command(args: argparse.Namespace) -> int:
    """`awooop contracts onboard PATH... [--project P] [--as AUTHOR] [--signer S]...
    [--no-wait]`."""
    files = read_tenant_files(args.paths, args.project)
    done = onboard(files, author=args.subject, signers=args.signers or DEVELOPMENT_SIGNERS)
    for one in done:
        print(one.line())
    if not args.no_wait:
        wait_until_read(done)
        print(f"{', '.join(READING_SERVICES)} decide by these revisions")
    return 0


READING_SERVICES = ("ingress", "runtime", "mcp_gateway")
"""The services that decide by contracts, each folding them into its `contract_revisions`."""


def wait_until_read(
    done: Sequence[Onboarded],
    *,
    services: Sequence[str] = READING_SERVICES,
    within: float = 60.0,
) -> None:
    """Return once every reading service holds each revision of `done` as active and
    verified (its reader shows a revision before it writes it to its table). Needs the
    admin URL (an operator's); raises ``ContractCommandError`` when a service refused a
    revision's signature, or after `within` seconds naming what is missing."""
    admin = Settings.from_env(admin=True).admin_url
    wanted = {(one.project, one.contract, one.revision) for one in done}
    missing = asyncio.run(_wait(admin, wanted, services, within))
    if missing:
        shown = ", ".join(sorted(missing)[:10])
        raise ContractCommandError(f"not read within {within:.0f}s: {shown}")


async def _wait(
    admin: str, wanted: set[tuple[str, str, int]], services: Sequence[str], within: float
) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    conn = await asyncpg.connect(admin)
    try:
        while True:
            missing = []
            for service in services:
                rows = await conn.fetch(
                    f"SELECT project_id, contract_id, revision, refusal "
                    f"FROM {quote_ident(service)}.contract_revisions WHERE state = 'active'"
                )
                held = {(r["project_id"], r["contract_id"], r["revision"]): r for r in rows}
                for key in sorted(wanted):
                    row = held.get(key)
                    name = f"{service}: {key[0]}/{key[1]}@{key[2]}"
                    if row is not None and row["refusal"] is not None:
                        raise ContractCommandError(f"{name} refused: {row['refusal']}")
                    if row is None:
                        missing.append(name)
            if not missing or loop.time() > deadline:
                return missing
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def tenant_folders(root: Path) -> list[Path]:
    """The folders under ``root`` holding contract files, one per tenant, sorted.

    Raises ``ContractFileError`` when ``root`` is not a folder or holds no tenant folder.
    """
    if not root.is_dir():
        raise ContractFileError(f"{root}: no such folder of tenant contracts")
    found = sorted(
        folder
        for folder in root.iterdir()
        if folder.is_dir() and any(p.suffix in SUFFIXES for p in folder.iterdir())
    )
    if not found:
        raise ContractFileError(f"{root}: no folder of contract files in it")
    return found


def read_tenant_files(paths: Sequence[Path], project: str | None = None) -> list[ContractFile]:
    """Every contract file under ``paths``, each body checked against its family, in
    activation order (:data:`FAMILY_ORDER`, then by path).

    Everything is read and checked before anything is sent, so a mistake in the last
    file drafts nothing. Raises ``ContractFileError`` naming the file.
    """
    files = [read_contract_file(path, project) for path in contract_paths(paths)]
    for read in files:
        check_body(read)
    return sorted(files, key=lambda read: (FAMILY_ORDER.index(read.family), str(read.path)))


def check_body(read: ContractFile) -> None:
    """Refuse (``ContractFileError``) a body its family's model does not accept."""
    family = CONTRACT_FAMILIES.get(read.family)
    if family is None:
        known = ", ".join(CONTRACT_FAMILIES)
        raise ContractFileError(f"{read.path}: unknown family {read.family!r}: one of {known}")
    try:
        family.model.model_validate(read.body)
    except ValidationError as error:
        problems = "; ".join(
            f"/{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5]
        )
        raise ContractFileError(f"{read.path}: not a valid {read.family} ({problems})") from None


def onboard(
    files: Sequence[ContractFile],
    *,
    author: str | None = None,
    signers: Sequence[str] = DEVELOPMENT_SIGNERS,
) -> list[Onboarded]:
    """Draft, publish, sign and activate each file's contract, in the order given.

    ``author`` (default ``operator:<login>``) drafts, publishes and activates; each of
    ``signers`` but the author signs until the family's count is reached. Raises
    ``ContractCommandError`` (naming the file) for a refusal it cannot go past.
    """
    if os.environ.get("AWOOOP_TOKEN"):
        raise ContractCommandError(
            "onboarding signs as several development signers, each with a token minted "
            "from the API secret; unset AWOOOP_TOKEN to use it"
        )
    writer = author or default_subject()
    pool = [signer for signer in dict.fromkeys(signers) if signer != writer]
    with ExitStack() as stack:
        clients = {
            subject: stack.enter_context(ContractClient(None, subject))
            for subject in (writer, *pool)
        }
        return [_onboard_one(read, clients, writer, pool) for read in files]


def _onboard_one(
    read: ContractFile, clients: dict[str, ContractClient], writer: str, pool: Sequence[str]
) -> Onboarded:
    try:
        return _lifecycle(read, clients, writer, pool)
    except ContractCommandError as error:
        raise ContractCommandError(f"{read.path}: {error}") from None


def _lifecycle(
    read: ContractFile, clients: dict[str, ContractClient], writer: str, pool: Sequence[str]
) -> Onboarded:
    post = clients[writer].post
    drafted = post(
        read.project,
        read.contract,
        "drafts",
        {"family": read.family, "body": read.body, "request_id": read.request_id},
    )
    revision = int(drafted["revision"])
    on_revision = f"revisions/{revision}"
    try:
        post(read.project, read.contract, f"{on_revision}/publish", _ids(read, "publish"))
    except ContractCommandError as error:
        # Published earlier under another request id: activation below says how far it got.
        if _code(error) != STATE_REFUSED:
            raise
    _sign(read, revision, clients, pool)
    return _activate(read, revision, clients[writer])


def _sign(
    read: ContractFile, revision: int, clients: dict[str, ContractClient], pool: Sequence[str]
) -> None:
    """Sign as each of ``pool`` in turn until an answer counts as many signers as needed.

    A signer the API refuses as the author or as having signed already is passed over;
    too few signers leave activation to say how many are missing.
    """
    for signer in pool:
        try:
            answer = clients[signer].post(
                read.project,
                read.contract,
                f"revisions/{revision}/signatures",
                _ids(read, "sign", signer),
            )
        except ContractCommandError as error:
            if _code(error) in SIGNER_REFUSALS:
                continue
            if _code(error) == STATE_REFUSED:
                break  # already active (or retired): activation says which
            raise
        if len(answer["signers"]) >= int(answer["required_signatures"]):
            return


def _activate(read: ContractFile, revision: int, client: ContractClient) -> Onboarded:
    # A fresh request id: the answer must say how the revision is now, not how it was
    # when an earlier run activated it (a later revision may have superseded it since).
    try:
        answer = client.post(
            read.project,
            read.contract,
            f"revisions/{revision}/activate",
            {"request_id": f"onboard-activate-{uuid.uuid4().hex}"},
        )
    except ContractCommandError as error:
        reason = str(error)
        if _code(error) != STATE_REFUSED:
            raise
        if f"revision {revision} is active:" in reason:
            return Onboarded(read.project, read.contract, read.family, revision, activated=False)
        if f"revision {revision} is retired:" in reason:
            msg = (
                f"{reason}; this content was drafted before as revision {revision}, since "
                "retired, and the same content drafts nothing new: change the body to draft it "
                "again"
            )
            raise ContractCommandError(msg) from None
        raise
    signers = tuple(answer.get("signers") or ())
    return Onboarded(read.project, read.contract, read.family, revision, True, signers)


def _ids(read: ContractFile, step: str, signer: str = "") -> dict[str, str]:
    """The request id of a step, derived from the draft's: the same file, the same id."""
    digest = hashlib.sha256(f"{step}\n{signer}\n{read.request_id}".encode()).hexdigest()
    return {"request_id": f"onboard-{step}-{digest[:32]}"}


def _code(error: ContractCommandError) -> str:
    """The API's error code: a refusal's message is ``<code>: <reason>``."""
    return str(error).partition(":")[0]
