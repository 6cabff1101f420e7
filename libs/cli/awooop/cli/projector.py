"""`awooop projector rebuild | checksum`: the read models rebuilt from the log, and digested.

Operator commands on the admin URL (no service holds it). `rebuild` fills a
fresh schema from offset 0 of every projector topic and swaps it in (see
`awooop.projector.rebuild`); `--dry-run` only compares. `checksum` prints the
order-independent digest of every read-model table, in total and per project;
`--against` compares two schemas and names each table and project that
differ, `--json` prints the digests for comparing two installations.

Exit codes: 0 done (and equal, where compared); 1 the compared read models
differ; 2 a usage or infrastructure error, in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from awooop.infra.settings import Settings, asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.domain.checksums import Checksums, differences
from awooop.projector.rebuild import (
    LIVE_SCHEMA,
    Rebuild,
    RebuildError,
    RebuildProgress,
    RebuildReport,
)
from awooop.projector.rebuild_load import PARALLEL_MIN_RECORDS

EXIT_DIFFERENT = 1
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ProjectorCommandError(RuntimeError):
    """A refusal with a one-line reason for the operator."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    projector = verbs.add_parser("projector", help="read models: rebuild from the log, checksum")
    which = projector.add_subparsers(dest="what", required=True, metavar="rebuild|checksum")
    rebuild = which.add_parser(
        "rebuild", help="rebuild the read models from the topics into a fresh schema, swap it in"
    )
    rebuild.add_argument(
        "--dry-run", action="store_true", help="build and compare with the live models, no swap"
    )
    rebuild.add_argument(
        "--drop-old",
        action="store_true",
        help="drop the previous read models once swapped, and those earlier swaps kept",
    )
    rebuild.add_argument("--quiet", action="store_true", help="no progress display")
    rebuild.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="load with N processes (1: in this one); default one per core, "
        f"or one when the log holds under {PARALLEL_MIN_RECORDS:,} records",
    )
    rebuild.set_defaults(handler=run_rebuild)
    checksum = which.add_parser("checksum", help="digests per read-model table and project")
    checksum.add_argument("--schema", default=LIVE_SCHEMA, help="the schema to digest")
    checksum.add_argument("--against", help="a second schema to compare with, e.g. a kept one")
    checksum.add_argument("--json", action="store_true", help="print the digests as JSON")
    checksum.set_defaults(handler=run_checksum)


class RebuildDisplay:
    """Records/s, records per topic still to read and the time left, on a terminal."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.completed:>9,.0f}/{task.total:,.0f} records"),
            TextColumn("{task.fields[rate]:>8,.0f}/s"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[lag]}"),
            console=console,
            transient=False,
            # No refresh thread: a rebuild forks its loaders, and a fork must find no
            # thread holding the terminal's locks. Each update redraws instead.
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RebuildDisplay:
        self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._progress.stop()

    def update(self, p: RebuildProgress) -> None:
        lag = ", ".join(f"{t.split('.')[1]} {n:,}" for t, n in sorted(p.lag.items()) if n)
        if p.phase not in self._tasks:
            self._tasks[p.phase] = self._progress.add_task(p.phase, total=p.total, rate=0.0, lag="")
        self._progress.update(
            self._tasks[p.phase],
            completed=p.records,
            total=p.total,
            rate=p.rate,
            lag=f"lag: {lag}" if lag else "",
        )
        self._progress.refresh()


def _summary(report: RebuildReport, dry_run: bool) -> list[str]:
    lines = [
        f"read {report.records:,} records, folded {report.events:,} events "
        f"({report.events_per_second:,.0f}/s), {report.poison} refused, "
        f"in {report.seconds:.1f}s into {report.schema} as group {report.group}"
    ]
    if dry_run:
        if report.differences:
            lines += [f"differs: {d.describe('live', 'rebuilt')}" for d in report.differences]
        else:
            lines.append("rebuilt read models equal the live ones (dry run: nothing swapped)")
    elif report.swapped and report.old_schema in report.dropped:
        lines.append("swapped in: the previous read models were dropped")
    elif report.swapped:
        lines.append(f"swapped in: the previous read models are kept as {report.old_schema}")
    lines += [f"dropped {name}" for name in report.dropped if name != report.old_schema]
    return lines


def run_rebuild(args: argparse.Namespace) -> int:
    settings = Settings.from_env(admin=True)
    console = Console(stderr=True)
    show = not args.quiet and console.is_terminal

    async def rebuilding(display: RebuildDisplay | None) -> RebuildReport:
        rebuild = Rebuild(
            settings.kafka,
            settings.admin_url,
            on_progress=display.update if display else None,
            workers=args.workers,
        )
        return await rebuild.run(dry_run=args.dry_run, drop_old=args.drop_old)

    try:
        if show:
            with RebuildDisplay(console) as display:
                report = asyncio.run(rebuilding(display))
        else:
            report = asyncio.run(rebuilding(None))
    except RebuildError as error:
        raise ProjectorCommandError(str(error)) from error
    for line in _summary(report, args.dry_run):
        print(line)
    return EXIT_DIFFERENT if report.differences else 0


async def _digests(*schemas: str) -> list[Checksums]:
    url = Settings.from_env(admin=True).admin_url
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url))
    except (OSError, asyncpg.PostgresError) as error:
        raise ProjectorCommandError(f"cannot reach Postgres at the admin URL: {error}") from error
    try:
        found: list[Checksums] = []
        for schema in schemas:
            if not _SCHEMA.fullmatch(schema) or not await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{schema}.timeline"
            ):
                raise ProjectorCommandError(f"schema {schema!r} holds no read models")
            found.append(await schema_checksums(conn, schema))
        return found
    finally:
        await conn.close()


def _table_lines(checksums: Checksums) -> list[str]:
    lines = ["table\tproject\trows\tdigest"]
    for table, entry in checksums.as_json().items():
        lines.append(f"{table}\t*\t{entry['all']['rows']}\t{entry['all']['digest']}")
        for project, digest in entry["projects"].items():
            lines.append(f"{table}\t{project}\t{digest['rows']}\t{digest['digest']}")
    return lines


def run_checksum(args: argparse.Namespace) -> int:
    schemas = [args.schema] + ([args.against] if args.against else [])
    found = asyncio.run(_digests(*schemas))
    if args.json:
        print(json.dumps({s: c.as_json() for s, c in zip(schemas, found, strict=True)}, indent=2))
    elif not args.against:
        for line in _table_lines(found[0]):
            print(line)
    if not args.against:
        return 0
    differing = differences(found[0], found[1])
    for difference in differing:
        print(f"differs: {difference.describe(args.schema, args.against)}", file=sys.stdout)
    if not differing:
        print(f"{args.schema} and {args.against} are equal in every table and project")
    return EXIT_DIFFERENT if differing else 0
