"""One side of the budget-ledger race: a separate OS process that, once told to go, makes
`count` concurrent reservations through its own pool, each in its own transaction.

Run as `python budget_race.py '<json>'` with `dsn`, `project`, `agent`, `budget` (a
`budget` body), `now` (ISO), `tokens`, `count`, `hold_seconds` (how long each
transaction keeps its row locks after reserving), `ready` and `go` (file paths: this
process creates `ready` once its connections are open, then waits for `go` to exist).
It prints one JSON line: how many reservations it got, how many were refused (by
scope and reason), any error raised instead, and when its reservations began and ended
(`time.monotonic`, one clock for every process of the machine).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from awooop.contracts.families.budget import Budget
from awooop.infra.postgres.pools import create_pool
from awooop.runtime.adapters.budget_ledger import Refused, reserve
from awooop.runtime.domain.budget import scopes_for


async def _one(pool: asyncpg.Pool, order: dict[str, Any], budget: Budget) -> str:
    run_id = uuid.uuid4()
    now = dt.datetime.fromisoformat(order["now"])
    scopes = scopes_for(budget, order["project"], order["agent"], run_id, now)
    async with pool.acquire() as conn, conn.transaction():
        got = await reserve(
            conn, order["project"], run_id, 1, scopes, order["tokens"], Decimal(0), 1
        )
        await asyncio.sleep(order["hold_seconds"])
    if isinstance(got, Refused):
        return f"refused:{got.scope_key.split('|')[1]}:{got.reason}"
    return "reserved"


def _touch(path: str) -> None:
    Path(path).touch()


def _exists(path: str) -> bool:
    return Path(path).exists()


async def race(order: dict[str, Any]) -> dict[str, Any]:
    budget = Budget.model_validate(order["budget"])
    count = order["count"]
    pool = await create_pool(order["dsn"], "runtime", min_size=count, max_size=count)
    try:
        _touch(order["ready"])
        # The go signal comes from another process: there is no event to wait on.
        while not _exists(order["go"]):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        began = time.monotonic()
        outcomes = await asyncio.gather(
            *(_one(pool, order, budget) for _ in range(count)), return_exceptions=True
        )
        ended = time.monotonic()
    finally:
        await pool.close()
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    tally = Counter(o for o in outcomes if isinstance(o, str))
    return {"outcomes": dict(tally), "errors": errors, "began": began, "ended": ended}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(race(json.loads(sys.argv[1])))))
