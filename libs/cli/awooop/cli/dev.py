"""`awooop dev up | down | status`: the embedded broker, Postgres and Redis of AWOOOP_HOME.

Exit codes: 0 on success; 1 when a piece fails to start or stop (the message
names the piece and the reason); 3 from `status` when a piece that is not
external is not running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from awooop.cli.broker_recovery import RecoverError, recovery_due
from awooop.cli.migrate import MigrateError, migrate_all
from awooop.cli.recover import recover_and_report
from awooop.infra.embedded import EmbeddedStack, StackStartError
from awooop.infra.embedded.broker_memory import RECORD_BYTES_ESTIMATE, broker_memory
from awooop.infra.embedded.stack import EXTERNAL_VARS, PieceStatus
from awooop.infra.settings import DEV_FETCH_MAX_WAIT_MS, KafkaSettings, Settings, state_dir

STATUS_NOT_RUNNING = 3


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add the `dev` verb and its `up`, `down` and `status` actions."""
    dev = verbs.add_parser("dev", help="start, stop or inspect the embedded stack")
    actions = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start whatever is not running yet")
    up.add_argument(
        "--fresh",
        action="store_true",
        help="start Postgres empty next to a new broker instead of recovering its data",
    )
    up.set_defaults(handler=run_up)
    down = actions.add_parser("down", help="stop the pieces recorded in stack.json")
    down.add_argument(
        "--purge", action="store_true", help="also remove the Postgres data, wherever it lives"
    )
    down.set_defaults(handler=run_down)
    status = actions.add_parser("status", help="one line per piece; exit 3 unless all run")
    status.set_defaults(handler=run_status)


def shown_url(url: str) -> str:
    """`url` with any password masked, fit for a terminal or a log."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def piece_line(status: PieceStatus, with_detail: bool = True) -> str:
    """`name  state  url  (detail)`, padded so several lines align."""
    line = f"{status.piece:<9} {status.state:<9} {shown_url(status.url) or '-'}"
    if with_detail and status.detail:
        line += f"  ({status.detail})"
    return line


def export_lines(stack: EmbeddedStack) -> list[str]:
    """`export AWOOOP_...=...` for each embedded piece this stack records.

    Variables already set in the environment are left out: they are exported
    already, and an external URL may carry a password.
    """
    external = {var for var in EXTERNAL_VARS.values() if stack.env.get(var)}
    return [
        f"export {var}={shlex.quote(url)}"
        for var, url in stack.urls().items()
        if var not in external
    ]


def bring_up(stack: EmbeddedStack, fresh: bool) -> list[PieceStatus] | None:
    """`stack.up()`, printing one line per piece, then the recovery a new broker next to
    kept data needs; None (after saying why) when a piece or the recovery fails."""
    said: list[str] = []

    def say(message: str) -> None:
        said.append(message)
        print(message)

    stack.say = say
    try:
        statuses = stack.up(fresh=fresh)
    except StackStartError as error:
        print(error, file=sys.stderr)
        print(
            f"pieces started before the failure stay recorded in {stack.record_path}; "
            "`awooop dev down` stops them",
            file=sys.stderr,
        )
        return None
    for status in statuses:
        print(piece_line(status, with_detail=status.detail not in said))
    new_broker = any(s.piece == "broker" and s.state == "started" for s in statuses)
    if new_broker and not recover_lost_broker(stack):
        return None
    return statuses


def recover_lost_broker(stack: EmbeddedStack) -> bool:
    """After the broker started empty: when Postgres holds data of an earlier broker,
    `awooop migrate` and `awooop recover broker-reset`. False (after saying why) when
    they fail; the stack stays up for the operator."""
    env = {**os.environ, **stack.urls(), "AWOOOP_HOME": str(stack.home)}
    settings = Settings.from_env(env, admin=True)
    try:
        if not asyncio.run(recovery_due(settings)):
            return True
        print("the broker started empty next to Postgres data of an earlier one: recovering")
        migrate_all(settings, report=lambda _line: None)
        for line in recover_and_report(settings):
            print(line)
    except Exception as error:  # every cause is the operator's to read, in one line
        reason = str(error) if isinstance(error, RecoverError | MigrateError) else repr(error)
        print(
            f"recovery failed: {reason}; `awooop recover broker-reset` retries it "
            "(`awooop dev down` then `awooop dev up --fresh` starts empty instead)",
            file=sys.stderr,
        )
        return False
    return True


def take_down(stack: EmbeddedStack) -> int:
    """`stack.down()`, printing what it stopped; 1 when a piece refuses to stop."""
    try:
        stopped = stack.down()
    except StackStartError as error:
        # The infra raises its one error type for a failed `pg_ctl stop` too.
        print(str(error).replace("failed to start", "failed to stop"), file=sys.stderr)
        return 1
    if not stopped:
        print(f"nothing recorded in {stack.record_path}: nothing stopped")
    for status in stopped:
        print(piece_line(status))
    return 0


def run_up(args: argparse.Namespace) -> int:
    """`awooop dev up [--fresh]`."""
    stack = EmbeddedStack(state_dir())
    if bring_up(stack, args.fresh) is None:
        return 1
    for line in export_lines(stack):
        print(line)
    return 0


def run_down(args: argparse.Namespace) -> int:
    """`awooop dev down [--purge]`: stops recorded pieces only, never external ones."""
    stack = EmbeddedStack(state_dir())
    status = take_down(stack)
    if status == 0 and args.purge:
        print(f"removed the Postgres data in {stack.remove_data()}")
    return status


def memory_lines(bootstrap: str, warn_mb: float) -> list[str]:
    """What the embedded broker holds, and a warning when its estimate passes `warn_mb`.

    Memory storage never frees a record, so a long-running stack grows until the
    machine swaps; a figure and a warning here are the only notice anyone gets.
    """
    settings = KafkaSettings(bootstrap=bootstrap, fetch_max_wait_ms=DEV_FETCH_MAX_WAIT_MS)
    try:
        memory = asyncio.run(broker_memory(settings))
    except Exception as error:  # a figure we cannot get must not hide the pieces' states
        return [f"records in the embedded broker: unknown ({type(error).__name__}: {error})"]
    lines = [
        f"records in the embedded broker: {memory.records}, about {memory.estimated_mb:.3g} MB "
        f"({RECORD_BYTES_ESTIMATE} bytes each; memory storage never frees one)"
    ]
    if memory.over(warn_mb):
        lines.append(
            f"warning: the embedded broker holds about {memory.estimated_mb:.3g} MB of records, "
            f"over AWOOOP_EMBEDDED_BROKER_WARN_MB={warn_mb:g}: start the stack "
            "empty (`awooop dev down`, then `awooop dev up --fresh`; every record and the "
            "Postgres data are lost) or point AWOOOP_KAFKA_BOOTSTRAP at a real cluster"
        )
    return lines


def run_status(_args: argparse.Namespace) -> int:
    """`awooop dev status`: 0 when every piece that is not external runs, else 3.

    For a running embedded broker it also says how many records it holds and warns
    past `AWOOOP_EMBEDDED_BROKER_WARN_MB`; the warning never changes the exit code.
    """
    statuses = EmbeddedStack(state_dir()).status()
    for status in statuses:
        print(piece_line(status))
    for status in statuses:
        if status.piece == "broker" and status.state == "running":
            warn_mb = Settings.from_env().embedded_broker_warn_mb
            for line in memory_lines(status.url, warn_mb):
                print(line)
    healthy = all(status.state in ("running", "external") for status in statuses)
    return 0 if healthy else STATUS_NOT_RUNNING
